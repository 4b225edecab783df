"""The local target's lifecycle on one deployment behind the gateway, with real tiny sklearn models:
apply, nothing changed, a redeploy under traffic, failed redeploys (old revision keeps answering),
a crashed replica restarted, rollback, force_rebuild, delete (nothing outlives it), and that the
plain key is in no file. (A gateway killed outright: test_reliability.py and test_gateway_e2e.py.)

The deployment keeps one replica warm (min_replicas: 1): scaling to zero is test_gateway_e2e's."""
from __future__ import annotations

import os
import pickle
import signal
import threading
from pathlib import Path

import httpx
import psutil
import pytest
from ruamel.yaml import YAML

pytest.importorskip("sklearn")  # every test here serves a real sklearn model
from sklearn.dummy import DummyClassifier

from conduit.errors import DeployError, UsageError
from conduit.manifest import load
from conduit.store import DeploymentNotFound, Store
from conduit.targets import local
from conduit.targets.local import processes
from conftest import TEST_KEY, alive, gateway_processes, replicas_of, wait_for

pytestmark = pytest.mark.e2e
NAME = "lifecycle"
POINTS = [[0.5, 1.5], [2.0, 3.0]]


def write_project(folder: Path, answer: int, post: str | None = None) -> Path:
    """A model that answers `answer` for every point (a real, fitted sklearn estimator)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = DummyClassifier(strategy="constant", constant=answer).fit([[i, i] for i in range(5)], list(range(5)))
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    stage = {"model_type": "sklearn", "path": "model.pkl", **({"post": post} if post else {})}
    document = {"name": NAME, "flow": [stage], "hardware": "CPU", "cpu": 1, "min_replicas": 1}
    YAML().dump(document, folder / "conduit.yaml")
    return folder / "conduit.yaml"


def ask(endpoint: str) -> list:
    response = httpx.post(endpoint, json=POINTS, headers={"Authorization": TEST_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def replicas(revision: int | None = None) -> list[dict]:
    return replicas_of(NAME, revision)


def ready_replica(revision: int) -> dict:
    return wait_for(lambda: next((row for row in replicas(revision) if row["state"] == "ready"), None))


@pytest.fixture(scope="module")
def project(conduit_home, tmp_path_factory):
    return tmp_path_factory.mktemp("project")


@pytest.fixture(scope="module")
def first(project):
    deployment = local.apply(load(write_project(project, 1)))
    return deployment


def test_first_apply_serves_on_the_gateways_endpoint_from_a_warm_replica(first):
    assert ask(first.endpoint) == [1, 1]
    assert first.changed and first.revision == 1 and first.api_key is None  # the key came from the environment
    assert first.endpoint == f"http://127.0.0.1:{first.port}/v1/default/{NAME}/predict"
    assert first.port == int(os.environ["CONDUIT_PORT"])
    status = local.status(NAME)
    assert status.state == "serving" and status.serving.revision == 1 and status.replicas_ready == 1
    assert status.endpoint == first.endpoint
    assert Path(status.serving.log_path).name == f"{NAME}-r1.log"
    (replica,) = replicas(1)
    assert replica["state"] == "ready" and replica["warm"]  # forked from the zygote
    assert alive(replica["pid"]) and processes.port_open(replica["port"])
    log = Path(status.serving.log_path).read_text()
    assert f"Service {NAME} initialized" in log and "started cold" not in log


def test_apply_with_nothing_changed_does_nothing(first, project):
    before = replicas(1)
    said: list[str] = []
    again = local.apply(load(project / "conduit.yaml"), progress=said.append)
    assert not again.changed
    assert (again.revision, again.endpoint) == (first.revision, first.endpoint)
    assert any("Nothing changed" in line for line in said)
    assert [r.revision for r in Store().revisions(NAME)] == [1]
    assert [row["pid"] for row in replicas(1)] == [row["pid"] for row in before]  # nothing restarted


def test_redeploy_moves_the_endpoint_under_traffic_without_failures(first, project):
    old = replicas(1)
    answers: list = []
    failures: list = []
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set() and len(answers) < 5000:
            try:  # a new connection each time, as independent clients would open
                response = httpx.post(first.endpoint, json=POINTS, headers={"Authorization": TEST_KEY}, timeout=60)
                (answers if response.status_code == 200 else failures).append(
                    response.json()["result"][0] if response.status_code == 200 else response.text
                )
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        second = local.apply(load(write_project(project, 2)))
        ask(second.endpoint)
    finally:
        done.set()
        thread.join()
    assert second.endpoint == first.endpoint and second.revision == 2
    assert ask(second.endpoint) == [2, 2]
    assert not failures, failures[:3]
    assert answers and set(answers) <= {1, 2}
    assert answers[answers.index(2):] == [2] * (len(answers) - answers.index(2))  # no going back
    # The old revision's replica drains, then stops.
    wait_for(lambda: not replicas(1))
    assert not [row["pid"] for row in old if alive(row["pid"])]
    assert not [row["port"] for row in old if processes.port_open(row["port"])]
    assert [r.state for r in Store().revisions(NAME)] == ["archived", "serving"]


def test_a_corrupt_artifact_fails_and_the_old_revision_keeps_answering(first, project):
    manifest = load(write_project(project, 3))
    # validate refuses a corrupt pickle up front; corrupted after it, the revision must fail alone
    (project / "model.pkl").write_bytes(b"\x00 this is not a pickle \xff" * 10)
    with pytest.raises(DeployError) as failure:
        local.apply(manifest)
    message = str(failure.value)
    assert "revision 3 of lifecycle failed" in message and "revision 2 keeps serving" in message
    assert "pickle" in message and "--- last lines of" in message
    assert ask(first.endpoint) == [2, 2]
    failed = Store().revision(NAME, 3)
    # The replica died before it was ready: the revision failed, with its log's first cause.
    assert failed.state == "failed" and failed.note.startswith("exited with code")
    assert failed.note.split(": ", 1)[1] == processes.first_cause(failed.log_path)
    wait_for(lambda: not replicas(3))
    assert not processes.writers_of(failed.log_path)


def test_a_hook_that_raises_at_import_fails_and_the_old_revision_keeps_answering(first, project):
    write_project(project, 4, post="hooks.py:relabel")
    (project / "hooks.py").write_text("def relabel(x):\n    return x\n")
    manifest = load(project / "conduit.yaml")
    # validate imports hooks and refuses this one up front; broken after it, the revision must fail alone
    (project / "hooks.py").write_text('raise RuntimeError("hook exploded at import")\n\ndef relabel(x):\n    return x\n')
    with pytest.raises(DeployError, match="hook exploded at import"):
        local.apply(manifest)
    assert ask(first.endpoint) == [2, 2]
    assert local.status(NAME).serving.revision == 2
    assert "hook exploded at import" in Store().revision(NAME, 4).note


def test_a_replica_whose_worker_is_killed_is_restarted_by_the_gateway(first):
    serving = local.status(NAME).serving
    crashed = ready_replica(serving.revision)
    workers = psutil.Process(crashed["pid"]).children()
    assert workers
    log = Path(serving.log_path)
    before = log.read_text()
    os.kill(workers[0].pid, signal.SIGKILL)
    # The leader stops the replica; the gateway starts another after its back-off.
    restarted = wait_for(lambda: next((r for r in replicas(serving.revision) if r["state"] == "ready" and r["pid"] != crashed["pid"]), None))
    assert ask(first.endpoint) == [2, 2]
    status = local.status(NAME)
    assert status.state == "serving" and status.view["counters"]["restarts"] == 1
    assert not alive(crashed["pid"]) and not [w.pid for w in workers if alive(w.pid)]
    said = log.read_text()[len(before):]
    # One line says what happened; a worker killed from outside leaves no traceback.
    assert f"[conduit] worker {workers[0].pid} ended (signal 9): stopping the replica" in said
    assert "Traceback" not in said
    assert restarted["warm"]


def test_rollback_serves_the_previous_bento_on_the_same_endpoint(first, project):
    latest = Store().revisions(NAME)[-1].revision
    back = local.rollback(NAME)
    assert back.endpoint == first.endpoint and back.revision == latest + 1
    assert ask(first.endpoint) == [1, 1]
    assert Store().revision(NAME, back.revision).note == "rollback to r1"
    forward = local.rollback(NAME, to=2)
    assert ask(first.endpoint) == [2, 2] and forward.revision == latest + 2
    with pytest.raises(UsageError, match="never served"):
        local.rollback(NAME, to=3)
    with pytest.raises(UsageError, match="no revision 99"):
        local.rollback(NAME, to=99)


def test_force_rebuild_serves_a_fresh_revision_of_the_same_bento(first, project):
    serving = local.status(NAME).serving
    old = replicas(serving.revision)
    manifest = load(write_project(project, 2)).model_copy(update={"force_rebuild": True})
    forced = local.apply(manifest.with_base_dir(project))
    assert forced.changed and forced.revision == serving.revision + 1 and forced.tag == serving.tag
    assert ask(first.endpoint) == [2, 2]
    wait_for(lambda: not replicas(serving.revision))
    assert not [row["pid"] for row in old if alive(row["pid"])]


def test_the_plain_key_is_in_no_file_of_the_home_or_the_bentos(conduit_home, first):
    needle = TEST_KEY.encode()
    files = [path for path in Path(conduit_home).rglob("*") if path.is_file()]
    assert any(path.name == "bento.yaml" for path in files)  # the Bento store is in there
    assert any(path.name == "gateway.log" for path in files) and any(path.name == "state.json" for path in files)
    leaks = [str(path) for path in files if needle in path.read_bytes()]
    assert not leaks
    from conduit.serving.auth import key_sha256

    assert key_sha256(TEST_KEY).encode() in (Path(conduit_home) / "conduit.db").read_bytes()


def test_delete_stops_everything_and_forgets_the_deployment(first):
    serving = local.status(NAME).serving
    assert {row["revision"] for row in replicas()} == {serving.revision}  # no leftovers of earlier revisions
    everyone = gateway_processes()
    assert len(everyone) >= 5  # keeper, gateway, zygote, the replica's leader and its worker
    ports = [row["port"] for row in replicas()] + [first.port]
    said: list[str] = []
    local.delete(NAME, progress=said.append)
    assert said == [f"🗑️  Deleted {NAME}: stopped 1 replica"]
    # The last deployment: the gateway and its keeper stop too, and nothing they started outlives them.
    assert local.running_gateway(Store()) is None
    assert not [process.pid for process in everyone if alive(process.pid)]
    assert not any(processes.port_open(port) for port in ports)
    assert not local.metrics_dir(Store(), NAME).exists()
    with pytest.raises(DeploymentNotFound):
        local.status(NAME)
    assert Store().revisions(NAME) == []
