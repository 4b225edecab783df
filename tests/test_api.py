"""Conduit(...): the same Manifest and messages as the YAML loader, hooks from functions, the API
key kept out of every file."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conduit import Conduit, hardware, model_type, paths
from conduit.errors import UsageError
from conduit.manifest import ManifestInvalid, load
from private_state import open_to_others

KEY = "sk-test-0123456789"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a model file and a hooks module, as a data scientist would have."""
    (tmp_path / "model.pkl").write_bytes(pickle.dumps("stand-in"))  # validate reads its opcodes
    (tmp_path / "hooks.py").write_text("def to_features(data):\n    return data\n\n\ndef to_labels(out):\n    return out\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    sys.modules.pop("hooks", None)
    return tmp_path


def messages(invalid: ManifestInvalid) -> list[str]:
    return [str(problem) for problem in invalid.problems]


def test_paths_are_relative_to_the_working_directory(project: Path):
    conduit = Conduit(name="iris", flow=(model_type.SKLEARN, "model.pkl"))
    assert conduit.manifest.base_dir == project.resolve()
    assert conduit.manifest.resolve("model.pkl") == (project / "model.pkl").resolve()
    assert conduit.manifest.hardware == hardware.CPU


def test_same_messages_as_the_loader(project: Path):
    (project / "conduit.yaml").write_text("name: Iris_Model\nflow: [sklearn, missing.pkl]\ncpu: 64\n")
    with pytest.raises(ManifestInvalid) as from_yaml:
        load(project / "conduit.yaml")
    with pytest.raises(ManifestInvalid) as from_python:
        Conduit(name="Iris_Model", flow=("sklearn", "missing.pkl"), cpu=64)
    assert sorted((p.key, p.message, p.hint) for p in from_python.value.problems) == sorted(
        (p.key, p.message, p.hint) for p in from_yaml.value.problems
    )
    assert messages(from_python.value) == [
        "name: name 'Iris_Model' may hold only lowercase letters, digits and hyphens (hint: did you mean `iris-model`?)",
        "cpu: cpu must be at most 32, got 64",
        f"flow[0].path: file 'missing.pkl' not found next to the manifest (hint: looked for {project.resolve()}/missing.pkl)",
    ]


def test_python_version_must_be_a_string(project: Path):
    with pytest.raises(ManifestInvalid) as caught:
        Conduit(name="iris", flow=("sklearn", "model.pkl"), python_version=3.10)
    assert messages(caught.value) == [
        'python_version: python_version must be written as a string, got 3.1 (hint: write it in quotes: "3.10")'
    ]


def test_python_38_is_refused_with_the_reason(project: Path):
    with pytest.raises(ManifestInvalid, match="Python 3.8 is not supported: its support ended in September 2023"):
        Conduit(name="iris", flow=("sklearn", "model.pkl"), python_version="3.8")


def test_flow_is_required(project: Path):
    with pytest.raises(ManifestInvalid) as caught:
        Conduit(name="iris")
    assert messages(caught.value) == ["flow: required key `flow` is missing (hint: e.g. `flow: [sklearn, model.pkl]`)"]


def test_paths_and_enums_or_strings(project: Path):
    (project / "requirements.txt").write_text("numpy\n")
    by_enum = Conduit(name="iris", flow=(model_type.SKLEARN, project / "model.pkl"), hardware=hardware.AMPERE_A100,
                      requirements_file=Path("requirements.txt"))
    by_text = Conduit(name="iris", flow=("sklearn", str(project / "model.pkl")), hardware="AMPERE_A100",
                      requirements_file="requirements.txt")
    assert by_enum.manifest == by_text.manifest
    assert by_enum.manifest.hardware is hardware.A100


def test_deprecated_hardware_warns(project: Path):
    conduit = Conduit(name="iris", flow=("torch", "model.pkl"), hardware=hardware.GPU)
    assert [str(warning) for warning in conduit.warnings] == [
        "warning: hardware: hardware GPU is deprecated (hint: use TURING_5000 (RTX 5000, 16 GB))"
    ]


def test_hook_functions_become_file_and_name(project: Path):
    import hooks

    conduit = Conduit(name="iris", flow=[("sklearn", "model.pkl", {"pre": hooks.to_features, "post": hooks.to_labels})])
    assert (conduit.manifest.flow[0].pre, conduit.manifest.flow[0].post) == ("hooks.py:to_features", "hooks.py:to_labels")


def test_hooks_in_a_subfolder(project: Path):
    (project / "lib").mkdir()
    (project / "lib" / "shaping.py").write_text("def clean(data):\n    return data\n")
    sys.modules.pop("shaping", None)
    sys.path.insert(0, str(project / "lib"))
    try:
        import shaping
    finally:
        sys.path.remove(str(project / "lib"))
    conduit = Conduit(name="iris", flow={"model_type": "sklearn", "path": "model.pkl", "pre": shaping.clean})
    assert conduit.manifest.flow[0].pre == "lib/shaping.py:clean"


def nested_hook():
    def inner(data):
        return data

    return inner


class Shaper:
    def shape(self, data):
        return data


@pytest.mark.parametrize(
    "hook, message",
    [
        (lambda data: data, "a lambda cannot be a hook; define a named function in a .py file next to the manifest"),
        (nested_hook(), "hook `inner` is defined inside `nested_hook`; define it at the top level of a .py file"),
        (Shaper().shape, "hook shape is not a plain function; define one with `def` in a .py file"),
        (len, "hook len is not a plain function; define one with `def` in a .py file"),
    ],
    ids=["lambda", "nested", "method", "builtin"],
)
def test_unusable_hooks_are_refused(project: Path, hook, message: str):
    with pytest.raises(ManifestInvalid) as caught:
        Conduit(name="iris", flow=("sklearn", "model.pkl", {"post": hook}))
    assert messages(caught.value) == [f"flow[0].post: {message}"]


def test_a_hook_from_an_interactive_session_is_refused(project: Path):
    script = textwrap.dedent(
        """
        from conduit import Conduit
        from conduit.manifest import ManifestInvalid
        def shape(data):
            return data
        try:
            Conduit(name="iris", flow=("sklearn", "model.pkl", {"pre": shape}))
        except ManifestInvalid as invalid:
            print(invalid.problems[0])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=project, timeout=120)
    assert out.stdout.strip() == (
        "flow[0].pre: hook `shape` was defined in an interactive session; move it into a .py file and import it from there"
    )


def test_api_key_from_argument_or_environment_and_never_written(project: Path, monkeypatch: pytest.MonkeyPatch):
    assert Conduit(name="iris", api_key=KEY, flow=("sklearn", "model.pkl")).api_key == KEY
    monkeypatch.setenv("CONDUIT_API_KEY", KEY)
    conduit = Conduit(name="iris", flow=("sklearn", "model.pkl"))
    assert conduit.api_key == KEY
    saved = conduit.save()
    assert saved == project / "conduit.yaml"
    assert KEY not in saved.read_text() and KEY not in conduit.to_yaml() and KEY not in repr(conduit)
    assert KEY not in pickle.dumps(conduit.manifest).decode("latin-1")
    assert Conduit.from_yaml(saved).api_key == KEY


def test_save_and_from_yaml_round_trip(project: Path):
    conduit = Conduit(name="iris", flow=[("sklearn", "model.pkl")], cpu=4, memory=4)
    path = conduit.save("conduit.yaml")
    assert path.read_text() == conduit.to_yaml()
    assert Conduit.from_yaml(path).manifest == conduit.manifest


def test_save_elsewhere_only_where_paths_still_resolve(project: Path):
    conduit = Conduit(name="iris", flow=("sklearn", "model.pkl"))
    (project / "deploy").mkdir()
    with pytest.raises(UsageError, match="file 'model.pkl' not found next to the manifest"):
        conduit.save(project / "deploy" / "conduit.yaml")
    assert not (project / "deploy" / "conduit.yaml").exists()
    assert conduit.manifest.base_dir == project.resolve()
    (project / "deploy" / "model.pkl").write_bytes(pickle.dumps("stand-in"))  # validate reads its opcodes
    conduit.save(project / "deploy")
    assert conduit.manifest.base_dir == (project / "deploy").resolve()
    assert load(project / "deploy" / "conduit.yaml") == conduit.manifest


def test_save_creates_a_folder_that_does_not_exist_yet(project: Path):
    # The model stays one folder up from the saved manifest: inside the same git work tree, so allowed.
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    conduit = Conduit(name="iris", flow=("sklearn", str(project / "model.pkl")))
    path = conduit.save("new/deep/conduit.yaml")
    assert path == Path("new/deep/conduit.yaml") and load(project / "new" / "deep" / "conduit.yaml") == conduit.manifest
    assert conduit.save(project / "by-folder").name == "conduit.yaml"  # no suffix: a folder
    relative = Conduit(name="iris", flow=("sklearn", "model.pkl"))
    with pytest.raises(UsageError, match="file 'model.pkl' not found next to the manifest"):
        relative.save("elsewhere/conduit.yaml")
    assert not (project / "elsewhere").exists()  # refused before anything was created


def test_run_takes_files_as_requests_does_and_calls_the_given_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(*load_iris(return_X_y=True))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    (tmp_path / "csv_hooks.py").write_text(
        "def rows(data, files):\n"
        "    table = files['table']\n"
        "    assert table.filename == 'rows.csv' and table.content_type == 'text/csv', table.filename\n"
        "    return [[float(v) for v in line.split(',')] for line in table.decode().splitlines()]\n"
    )
    (tmp_path / "rows.csv").write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import csv_hooks

    conduit = Conduit(name="iris", flow=(model_type.SKLEARN, "model.pkl", {"pre": csv_hooks.rows}))
    with open(tmp_path / "rows.csv", "rb") as table:
        assert conduit.run(files={"table": table}) == [0, 2, 1]
    assert conduit.run(None, files={"table": ("rows.csv", b"6.7,3.0,5.2,2.3", "text/csv")}) == [2]
    assert conduit.run([[0]], files={"table": tmp_path / "rows.csv"}) == [0, 2, 1]
    (tmp_path / "csv_hooks.py").write_text("raise SystemExit('run() must not import the hook file again')\n")
    assert conduit.run(files={"table": tmp_path / "rows.csv"}) == [0, 2, 1]


def test_run_uses_the_flow_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(LogisticRegression(max_iter=300).fit(features, labels)))
    monkeypatch.chdir(tmp_path)
    conduit = Conduit(name="iris", flow=(model_type.SKLEARN, "model.pkl"))
    assert conduit.run([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]) == [0, 2]


def test_stage_and_batching_objects(project: Path):
    from conduit.manifest import Batching, Stage

    by_objects = Conduit(name="iris", flow=Stage(model_type="sklearn", path="model.pkl"), batching=Batching(max_batch_size=8))
    by_data = Conduit(name="iris", flow=[{"model_type": "sklearn", "path": "model.pkl"}], batching={"max_batch_size": 8})
    assert by_objects.manifest == by_data.manifest
    assert by_objects.manifest.batching.max_latency_ms == 10


def test_values_that_cannot_be_written_are_refused(project: Path):
    with pytest.raises(ManifestInvalid) as caught:
        Conduit(name="iris", flow=("sklearn", "model.pkl"), cpu=object())
    assert messages(caught.value) == [
        "cpu: a value of type object cannot be written in a manifest (hint: use text, numbers, true/false, lists and mappings)"
    ]


def test_project_and_replica_concurrency_are_arguments(project: Path):
    conduit = Conduit(name="iris", flow=("sklearn", "model.pkl"), project="team-a", replica_concurrency=6)
    assert (conduit.manifest.project, conduit.manifest.resolved_replica_concurrency) == ("team-a", 6)
    assert load(conduit.save()) == conduit.manifest


def test_a_bad_project_is_refused_with_a_suggestion(project: Path):
    with pytest.raises(ManifestInvalid) as caught:
        Conduit(name="iris", flow=("sklearn", "model.pkl"), project="Team A")
    assert messages(caught.value) == [
        "project: project 'Team A' may hold only lowercase letters, digits and hyphens (hint: did you mean `team-a`?)"
    ]


def test_deploy_refuses_an_option_its_target_does_not_take_before_writing(project: Path):
    conduit = Conduit(name="iris", flow=("sklearn", "model.pkl"))
    with pytest.raises(UsageError, match="^--namespace is an option of the kubernetes target, not of the local target$"):
        conduit.deploy(namespace="team-a")
    assert not (project / "conduit.yaml").exists()


@pytest.mark.e2e
def test_deploy_serves_the_manifest_it_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import httpx

    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    from sklearn.linear_model import LogisticRegression

    from conduit.targets import local

    features, labels = load_iris(return_X_y=True)
    project = tmp_path / "project"
    project.mkdir()
    (project / "model.pkl").write_bytes(pickle.dumps(LogisticRegression(max_iter=300).fit(features, labels)))
    monkeypatch.chdir(project)
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    conduit = Conduit(name="api-deploy", api_key=KEY, flow=(model_type.SKLEARN, "model.pkl"), cpu=1)
    callers_umask = os.umask(0o022)  # the usual one: deploy keeps its state private all the same
    try:
        endpoint = conduit.deploy()
        assert endpoint == f"http://127.0.0.1:{os.environ['CONDUIT_PORT']}/v1/default/api-deploy/predict"
        assert paths.current_umask() == 0o022  # and gives the caller's own umask back
        answer = httpx.post(endpoint, json=[[5.1, 3.5, 1.4, 0.2]], headers={"Authorization": KEY}, timeout=60)
        assert answer.status_code == 200 and answer.json()["result"] == [0]
        assert httpx.post(endpoint, json=[[5.1, 3.5, 1.4, 0.2]], timeout=60).status_code == 401
        assert open_to_others(tmp_path / "home") == []
    finally:
        os.umask(callers_umask)
        local.delete("api-deploy", progress=lambda _: None)
    assert (project / "conduit.yaml").read_text() == conduit.to_yaml()
    assert KEY not in (project / "conduit.yaml").read_text()
