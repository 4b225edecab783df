"""Nothing is silently ignored: `conduit validate` warns, on stderr and one a line, about every
field the target does not honour (conduit.targets.honoured), and still exits 0."""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import pytest

from conduit.cli.main import main
from conduit.targets import honoured

OTHER_PYTHON = "3.12"  # any version: the local target makes an environment with it (conduit.environments)
EVERY_FIELD_SET = (
    "name: iris\nproject: team-a\nflow: [sklearn, model.pkl]\nmemory: 4.0\ncooldown: 30\nmin_replicas: 0\n"
    f"max_replicas: 3\nreplica_concurrency: 2\nrequirements_file: requirements.txt\npython_version: \"{OTHER_PYTHON}\"\n"
)
NO_CGROUP = "no memory cgroup on this machine (cgroup v1 memory controller or cgroup v2)"


@pytest.fixture(autouse=True)
def memory_cgroup(monkeypatch: pytest.MonkeyPatch):
    """Whether this machine lets conduit limit a replica's memory, made the same everywhere:
    writable (None), unless a test says otherwise."""
    from conduit.targets.local import cgroup

    monkeypatch.setattr(cgroup, "why_unavailable", lambda: None)
    return monkeypatch


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([1.0, 2.0]))  # validate reads no model, only its file
    (tmp_path / "requirements.txt").write_text("numpy\n")
    return tmp_path


def validate(folder: Path, text: str, capsys, *options: str) -> tuple[int, str, list[str]]:
    (folder / "conduit.yaml").write_text(text)
    code = main(["validate", *options, str(folder / "conduit.yaml")])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_every_target_has_a_row_for_every_field():
    assert {target: set(rows) for target, rows in honoured.TARGETS.items()} == {
        "local": set(honoured.FIELDS),
        "kubernetes": set(honoured.FIELDS),
    }


def test_every_field_is_honoured_locally_where_a_cgroup_can_hold_memory(folder: Path, capsys):
    """The gateway honours project, cooldown, min/max_replicas and replica_concurrency; each Bento's
    own environment honours python_version and requirements_file; memory is enforced where a
    memory cgroup is writable (this test's machine)."""
    code, out, err = validate(folder, EVERY_FIELD_SET, capsys)
    assert (code, out, err) == (0, f"{folder}/conduit.yaml: valid (iris)\n", [])


def test_memory_is_a_warning_where_no_cgroup_can_hold_it(folder: Path, capsys, memory_cgroup):
    from conduit.targets.local import cgroup

    memory_cgroup.setattr(cgroup, "why_unavailable", lambda: NO_CGROUP)
    _, _, err = validate(folder, "name: iris\nflow: [sklearn, model.pkl]\n", capsys)
    assert f"{folder}/conduit.yaml:1:1: warning: memory: memory 8 GB (the default) is not enforced on this machine: {NO_CGROUP}" in err


def test_without_the_cgroup_module_memory_is_not_enforced_as_before(folder: Path, capsys, memory_cgroup):
    memory_cgroup.setitem(sys.modules, "conduit.targets.local.cgroup", None)  # importing it raises ImportError
    _, _, err = validate(folder, "name: iris\nflow: [sklearn, model.pkl]\nmemory: 4.0\n", capsys)
    assert (
        f"{folder}/conduit.yaml:3:9: warning: memory: memory 4 GB is not enforced by the local target: a replica may use more"
    ) in err


def test_what_the_local_target_honours_is_not_warned(folder: Path, capsys):
    python = OTHER_PYTHON
    code, _, err = validate(
        folder,
        "name: iris\nproject: team-a\nflow: [sklearn, model.pkl]\ncpu: 1\nmemory: 4.0\ncooldown: 5\nmin_replicas: 0\n"
        f"max_replicas: 5\nreplica_concurrency: 3\npython_version: \"{python}\"\n",
        capsys,
    )
    assert (code, err) == (0, [])


def test_cpu_above_the_cores_here(folder: Path, capsys):
    cores = os.cpu_count() or 1
    if cores >= 32:
        pytest.skip("cpu is at most 32, and this machine has that many cores")
    _, _, err = validate(folder, f"name: iris\nflow: [sklearn, model.pkl]\ncpu: {cores + 1}\n", capsys)
    assert (
        f"{folder}/conduit.yaml:3:6: warning: cpu: cpu {cores + 1} is more than the {cores} cores here: "
        f"the local target's {cores + 1} workers share them (hint: lower cpu to {cores})"
    ) in err


def test_a_gpu_on_a_flow_that_never_uses_one_is_remarked_on_every_target(folder: Path, capsys):
    text = "name: iris\nflow: [sklearn, model.pkl]\nhardware: H100\n"
    remark = (
        f"{folder}/conduit.yaml:3:11: warning: hardware: hardware H100 is a GPU but a sklearn flow never uses one: "
        "it runs on the CPU (hint: use hardware: CPU)"
    )
    for target in ("local", "kubernetes"):
        code, _, err = validate(folder, text, capsys, "--target", target)
        assert code == 0 and remark in err, target


def test_a_gpu_flow_where_no_gpu_is_visible_runs_on_the_cpu_and_says_so(folder: Path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # hides every GPU, whatever this machine has
    text = "name: mlp\nflow: [torch, model.pkl]\nhardware: H100\n"
    _, _, err = validate(folder, text, capsys)
    assert (
        f"{folder}/conduit.yaml:3:11: warning: hardware: hardware H100 is a GPU but none is visible here: "
        "flow[0] (torch) will run on the CPU"
    ) in err
    _, _, err = validate(folder, text, capsys, "--target", "kubernetes")
    assert [line for line in err if "hardware" in line] == []  # the cluster schedules it on a node with that GPU


def test_the_kubernetes_target_honours_every_field(folder: Path, capsys):
    code, _, err = validate(folder, EVERY_FIELD_SET, capsys, "--target", "kubernetes")
    # but the prediction log, on by default, has no sink there unless the manifest names one
    assert (code, err) == (0, [
        f"{folder}/conduit.yaml:1:1: warning: prediction_log: prediction_log records nothing on kubernetes without "
        "prediction_log.url (KServe's logger needs a sink to send to)"
    ])


def test_warnings_become_github_annotations(folder: Path, capsys, monkeypatch):
    from conduit.targets.local import cgroup

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr(cgroup, "why_unavailable", lambda: NO_CGROUP)
    (folder / "conduit.yaml").write_text("name: iris\nflow: [sklearn, model.pkl]\nmemory: 4.0\n")
    assert main(["validate", str(folder / "conduit.yaml")]) == 0
    assert (
        f"::warning file={folder}/conduit.yaml,line=3,col=9::memory: memory 4 GB is not enforced on this machine: {NO_CGROUP}"
    ) in capsys.readouterr().out.splitlines()


def test_the_raw_flavour_scales_on_cpu_not_on_replica_concurrency(folder: Path, capsys):
    text = "name: iris\nflow: [sklearn, model.pkl]\nmin_replicas: 1\nreplica_concurrency: 8\nprediction_log:\n  enabled: false\n"
    code, _, err = validate(folder, text, capsys, "--target", "kubernetes", "--flavor", "raw")
    assert (code, err) == (0, [(
        f"{folder}/conduit.yaml:4:22: warning: replica_concurrency: replica_concurrency 8 is not honoured by the kubernetes "
        "raw flavour: its HorizontalPodAutoscaler scales on CPU utilisation (hint: use the serverless flavour "
        "(--flavor serverless) to scale on requests in flight)"
    )])
    code, _, err = validate(folder, text, capsys, "--target", "kubernetes")
    assert (code, err) == (0, [])
