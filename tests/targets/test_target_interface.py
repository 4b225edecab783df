"""`conduit.targets.get(name, **options) -> Target`: the commands reach every target through it,
an option or an operation a target does not have is one clear UsageError, and importing the
interface imports no target."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conduit import targets
from conduit.cli.main import main
from conduit.errors import UsageError
from conduit.store import DeploymentNotFound
from conduit.targets.kubernetes.target import KubernetesTarget
from conduit.targets.local_target import LocalTarget


def test_each_name_gives_its_target_with_its_options():
    assert targets.NAMES == ("local", "kubernetes")
    assert isinstance(targets.get(), LocalTarget) and targets.get().name == "local"
    cluster = targets.get("kubernetes", namespace="team-a", context="kind", flavor=None, image="iris:1")
    assert isinstance(cluster, KubernetesTarget)
    assert (cluster.namespace, cluster.context, cluster.flavor, cluster.image) == ("team-a", "kind", "serverless", "iris:1")


def test_a_kubernetes_option_on_the_local_target_is_refused():
    with pytest.raises(UsageError) as refused:
        targets.get("local", namespace="team-a", flavor=None)
    assert str(refused.value) == "--namespace is an option of the kubernetes target, not of the local target"


def test_an_unknown_target_names_the_known_ones():
    with pytest.raises(UsageError, match=r"^unknown target 'nomad': use one of local, kubernetes$"):
        targets.get("nomad")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.rollback("iris"), ("`conduit rollback` is not supported on the kubernetes target: apply the earlier "
         "conduit.yaml again (git revert, then `conduit apply`)")),
        (lambda t: t.log_path("iris"), ("`conduit logs` is not supported on the kubernetes target: use "
         "`kubectl logs -l app.kubernetes.io/name=iris -n team-a`")),
        (lambda t: t.status("iris"), ("`conduit status` is not supported on the kubernetes target: use "
         "`kubectl get inferenceservice iris -n team-a`")),
        (lambda t: t.statuses(), ("`conduit ls` is not supported on the kubernetes target: use "
         "`kubectl get inferenceservices -l app.kubernetes.io/managed-by=conduit -A`")),
    ],
    ids=["rollback", "logs", "status", "ls"],
)
def test_a_local_only_operation_on_kubernetes_says_what_to_use(call, message: str):
    with pytest.raises(UsageError) as refused:
        call(targets.get("kubernetes", namespace="team-a"))
    assert str(refused.value) == message


def test_an_operation_no_target_overrides_is_refused_by_the_interface():
    class Nowhere(targets.Target):
        name = "nowhere"

    with pytest.raises(UsageError, match=r"^`conduit apply` is not supported on the nowhere target: choose another --target$"):
        Nowhere().apply(object())


def test_the_local_target_reaches_the_local_functions(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    with pytest.raises(DeploymentNotFound):
        targets.get("local").log_path("never-deployed")


@pytest.mark.parametrize(
    "argv",
    [
        ["apply", "--namespace", "team-a", "conduit.yaml"],
        ["render", "--flavor", "raw", "conduit.yaml"],
        ["validate", "--flavor", "raw", "conduit.yaml"],
        ["delete", "--context", "kind", "iris"],
    ],
    ids=["apply", "render", "validate", "delete"],
)
def test_the_commands_refuse_a_kubernetes_option_on_local_before_any_work(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no conduit.yaml here: the option is refused before it is read
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    assert main(argv) == 2
    option = argv[1]
    assert f"{option} is an option of the kubernetes target, not of the local target" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


def test_importing_the_interface_imports_no_target():
    code = (
        "import sys, conduit.targets, conduit.targets.honoured\n"
        "print(sorted(m for m in sys.modules if m.startswith(('conduit.targets.local', 'conduit.targets.kubernetes', 'bentoml'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_kubernetes_apply_function_outlives_its_submodule_of_the_same_name():
    """`kubernetes/apply.py` and `kubernetes.apply(...)` share a name: importing the submodule
    (first, in a fresh interpreter) must leave the package's `apply` the function."""
    code = (
        "import conduit.targets.kubernetes.apply\n"
        "from conduit.targets import kubernetes\n"
        "print(type(kubernetes.apply).__name__, kubernetes.apply.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "function conduit.targets.kubernetes"
