"""`ls` and `status` tell the truth: the warnings apply printed stay with the revision, a failed
first deploy has no endpoint, a rollback shows the manifest its Bento came from, and both commands
speak JSON with stable keys."""
from __future__ import annotations

import contextlib
import io
import json
import operator
import pickle
import re
from pathlib import Path

import pytest

from conduit.cli.main import main

pytestmark = pytest.mark.e2e
NAME = "json-life"
BROKEN = "json-broken"
SUMMARY_KEYS = [
    "name", "state", "degraded", "endpoint", "revision", "bento", "replicas", "last_request_at", "manifest_path", "warnings",
]


def write_project(folder: Path, answer: int, name: str = NAME, model: bytes | None = None) -> Path:
    from sklearn.dummy import DummyClassifier

    folder.mkdir(parents=True, exist_ok=True)
    if model is None:
        model = pickle.dumps(DummyClassifier(strategy="constant", constant=answer).fit([[0, 0], [1, 1]], [answer, answer]))
    (folder / "model.pkl").write_bytes(model)
    # replica_concurrency below the batch size: a warning that names this revision's own value
    (folder / "conduit.yaml").write_text(
        f"name: {name}\nflow: [sklearn, model.pkl]\ncpu: 1\nmax_replicas: {answer + 1}\nreplica_concurrency: {answer}\n"
        "batching:\n  max_batch_size: 8\n"
    )
    return folder / "conduit.yaml"


class FailsToLoad:
    """A valid pickle (validation passes) whose loading raises, so the revision never gets ready."""

    def __reduce__(self):
        return operator.truediv, (1, 0)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    pytest.importorskip("sklearn")
    home = tmp_path_factory.mktemp("json-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONDUIT_HOME", str(home))
        patch.setenv("CONDUIT_READY_TIMEOUT", "300")
        patch.setenv("CONDUIT_API_KEY", "json-test-key-0123456789")
        try:
            yield home
        finally:
            for name in (NAME, BROKEN):
                main(["delete", name])


def quietly(*argv: str) -> tuple[int, str, str]:
    """Run the CLI in a module-scoped fixture, where capsys is not available."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def first(home, tmp_path_factory):
    """(manifest path, apply's stderr) of revision 1."""
    manifest = write_project(tmp_path_factory.mktemp("first"), 1)
    code, out, err = quietly("apply", str(manifest))
    assert code == 0, out + err
    return manifest, err


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_apply_warns_on_stderr_and_status_shows_the_same_warnings(first, capsys):
    manifest, err = first
    warning = (
        f"{manifest}:5:22: warning: replica_concurrency: replica_concurrency 1 is less than batching.max_batch_size 8: "
        "replicas are added before a batch can fill (hint: raise replica_concurrency to 8 or lower max_batch_size to 1)"
    )
    assert warning in err.splitlines()
    code, out, _ = run(capsys, "status", NAME)
    assert code == 0 and "warnings:\n" in out and f"  {warning}\n" in out
    stored = json.loads(run(capsys, "status", NAME, "--json")[1])["warnings"]
    assert stored == [line for line in err.splitlines() if ": warning: " in line]


def test_status_json_has_stable_keys(first, capsys):
    code, out, _ = run(capsys, "status", NAME, "--json")
    document = json.loads(out)
    assert code == 0 and list(document) == SUMMARY_KEYS + ["serving", "gateway", "revisions"]
    assert (document["name"], document["state"]) == (NAME, "serving")
    assert document["revision"] == document["serving"]["revision"] == document["revisions"][-1]["revision"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:{document['gateway']['port']}/v1/default/{NAME}/predict", document["endpoint"])
    assert document["bento"].startswith(f"{NAME}:")
    assert document["replicas"] == {"ready": 1, "desired": 1}
    assert list(document["serving"]) == ["revision", "bento", "settings"]
    assert document["serving"]["settings"]["max_replicas"] == 2
    assert list(document["gateway"]) == ["port", "failing"]
    for revision in document["revisions"]:
        assert list(revision) == ["revision", "state", "bento", "created_at", "note", "manifest_path", "warnings"]


def test_ls_json_lists_the_same_summary(first, capsys):
    code, out, _ = run(capsys, "ls", "--json")
    listed = {item["name"]: item for item in json.loads(out)}
    status = json.loads(run(capsys, "status", NAME, "--json")[1])
    assert code == 0 and listed[NAME] == {key: status[key] for key in SUMMARY_KEYS}


def test_a_failed_first_deploy_is_listed_failed_with_no_endpoint(home, tmp_path, capsys):
    manifest = write_project(tmp_path / "broken", 1, name=BROKEN, model=pickle.dumps(FailsToLoad()))
    code, _, err = run(capsys, "apply", str(manifest))
    assert code == 1 and "nothing is serving" in err
    code, out, _ = run(capsys, "ls")
    assert re.search(rf"^{BROKEN}\s+failed(\s+-){{5}}$", out, re.MULTILINE), out
    listed = {item["name"]: item for item in json.loads(run(capsys, "ls", "--json")[1])}
    assert (listed[BROKEN]["state"], listed[BROKEN]["endpoint"]) == ("failed", None)
    assert run(capsys, "status", BROKEN, "--endpoint")[:2] == (1, "\n")
    code, out, _ = run(capsys, "status", BROKEN)
    assert code == 1 and "endpoint:  -\n" in out


def test_status_after_a_rollback_shows_the_manifest_the_bento_came_from(first, tmp_path, capsys):
    manifest, _ = first
    second = write_project(tmp_path / "second", 2)
    assert run(capsys, "apply", str(second))[0] == 0
    assert json.loads(run(capsys, "status", NAME, "--json")[1])["manifest_path"] == str(second)
    assert run(capsys, "rollback", NAME)[0] == 0
    code, out, _ = run(capsys, "status", NAME)
    assert code == 0 and f"manifest:  {manifest}\n" in out
    document = json.loads(run(capsys, "status", NAME, "--json")[1])
    assert document["revision"] == 3 and document["manifest_path"] == str(manifest)
    assert any("replica_concurrency 1 is less than" in warning for warning in document["warnings"])
