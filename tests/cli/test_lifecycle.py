"""The lifecycle commands as a person types them: apply (key generated and shown once), apply
again, ls, status, predict, logs, rollback, delete, and their errors."""
from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

pytest.importorskip("sklearn")  # every test here serves a real sklearn model
from sklearn.dummy import DummyClassifier

from conduit.cli.main import main
from conduit.store import Store

pytestmark = pytest.mark.e2e
NAME = "cli-life"


def write_project(folder: Path, answer: int, name: str = NAME) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = DummyClassifier(strategy="constant", constant=answer).fit([[0, 0], [1, 1]], [0, 1])
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    YAML().dump(
        {"name": name, "flow": [{"model_type": "sklearn", "path": "model.pkl"}], "hardware": "CPU", "cpu": 1},
        folder / "conduit.yaml",
    )
    return folder / "conduit.yaml"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONDUIT_HOME", str(home))
        patch.setenv("CONDUIT_READY_TIMEOUT", "300")
        patch.delenv("CONDUIT_API_KEY", raising=False)
        try:
            yield home
        finally:
            main(["delete", NAME])


@pytest.fixture(scope="module")
def applied(home, tmp_path_factory):
    """(manifest path, output of the first apply, the key it showed)."""
    manifest = write_project(tmp_path_factory.mktemp("project"), 1)
    out = io.StringIO()  # module-scoped fixtures cannot use capsys
    with contextlib.redirect_stdout(out):
        code = main(["apply", str(manifest)])
    text = out.getvalue()
    assert code == 0, text
    match = re.search(r"API key \(shown once; only its hash is kept\): (\S+)", text)
    assert match, text
    return manifest, text, match.group(1)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_apply_prints_the_endpoint_and_the_new_key_once(applied, capsys):
    manifest, first_output, key = applied
    assert "🌍 Endpoint: http://127.0.0.1:" in first_output
    code, out, _ = run(capsys, "apply", str(manifest))
    assert code == 0 and "Nothing changed" in out and "API key" not in out and key not in out


def test_ls_and_status(applied, capsys):
    code, out, _ = run(capsys, "ls")
    endpoint = rf"http://127\.0\.0\.1:\d+/v1/default/{NAME}/predict"
    assert code == 0 and re.search(rf"^{NAME}\s+serving\s+\d+/\d+\s+1\s+{endpoint}\s", out, re.M), out
    code, out, _ = run(capsys, "status", NAME)
    assert code == 0 and "state:     serving" in out and "1         serving" in out
    code, out, _ = run(capsys, "status", NAME, "--endpoint")
    assert code == 0 and re.fullmatch(rf"{endpoint}\n", out), out


def test_predict_needs_the_key_and_answers_with_it(applied, capsys, monkeypatch):
    _, _, key = applied
    code, _, err = run(capsys, "predict", NAME, "--data", "[[1, 2]]")
    assert code == 2 and "CONDUIT_API_KEY" in err
    monkeypatch.setenv("CONDUIT_API_KEY", "not-the-right-key-0123")
    code, out, _ = run(capsys, "predict", NAME, "--data", "[[1, 2]]")
    assert code == 1 and json.loads(out)["error"]["type"] == "unauthorized"
    monkeypatch.setenv("CONDUIT_API_KEY", key)
    code, out, _ = run(capsys, "predict", NAME, "--data", "[[1, 2], [3, 4]]")
    assert code == 0 and json.loads(out)["result"] == [1, 1]


def test_logs_show_the_serving_revision(applied, capsys):
    code, out, _ = run(capsys, "logs", NAME, "-n", "200")
    assert code == 0 and f"Service {NAME} initialized" in out  # what its replica's BentoML worker said


def test_an_invalid_manifest_changes_nothing(applied, capsys, tmp_path):
    bad = tmp_path / "conduit.yaml"
    bad.write_text(f"name: {NAME}\nflow: [[sklearn, model.pkl]]\ncpu: 100\n")
    code, _, err = run(capsys, "apply", str(bad))
    assert code == 1 and "cpu" in err
    assert [r.revision for r in Store().revisions(NAME)] == [1]
    assert run(capsys, "status", NAME)[0] == 0


def test_errors_for_unknown_names_and_impossible_rollbacks(applied, capsys):
    code, _, err = run(capsys, "status", "nope")
    assert code == 1 and "no deployment named 'nope'" in err
    code, _, err = run(capsys, "rollback", NAME)
    assert code == 2 and "no earlier revision" in err


def test_the_generated_key_is_in_no_file(applied, home):
    _, _, key = applied
    leaks = [str(p) for p in Path(home).rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert not leaks


def test_delete_leaves_nothing(applied, capsys):
    code, out, _ = run(capsys, "delete", NAME)
    assert code == 0 and f"Deleted {NAME}: stopped 1 replica\n" in out
    code, out, _ = run(capsys, "ls")
    assert "No deployments yet" in out


def test_apply_changed_since_deploys_only_what_changed(applied, capsys, tmp_path, monkeypatch):
    git = pytest.importorskip("git")
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as config:
        config.set_value("user", "name", "test").set_value("user", "email", "test@example.com")
    write_project(tmp_path / "steady", 1, name="cli-steady")
    repo.index.add(["steady/conduit.yaml", "steady/model.pkl"])
    first = repo.index.commit("steady")
    write_project(tmp_path / "fresh", 1, name="cli-fresh")
    repo.index.add(["fresh/conduit.yaml", "fresh/model.pkl"])
    repo.index.commit("fresh")
    monkeypatch.chdir(tmp_path)
    try:
        code, out, err = run(capsys, "apply", "--changed-since", first.hexsha)
        assert code == 0, err
        assert "create cli-fresh" in out and "cli-steady unchanged" in out
        names = {d.name for d in Store().deployments()}
        assert "cli-fresh" in names and "cli-steady" not in names
    finally:
        main(["delete", "cli-fresh"])
