"""The local target's lifecycle on one deployment, with real tiny sklearn models: apply, nothing
changed, a redeploy under traffic, failed redeploys (old revision keeps answering), a crashed
server restarted, rollback, delete, and that the plain key is in no file."""
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
from conduit.targets import local, processes
from conduit.targets.processes import ROUTER_MODULE, SUPERVISOR_MODULE

from conftest import TEST_KEY, wait_for
from test_standby import idle_standbys

pytestmark = pytest.mark.e2e
NAME = "lifecycle"
POINTS = [[0.5, 1.5], [2.0, 3.0]]


def write_project(folder: Path, answer: int, post: str | None = None) -> Path:
    """A model that answers `answer` for every point (a real, fitted sklearn estimator)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = DummyClassifier(strategy="constant", constant=answer).fit([[i, i] for i in range(5)], list(range(5)))
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    stage = {"model_type": "sklearn", "path": "model.pkl", **({"post": post} if post else {})}
    YAML().dump({"name": NAME, "flow": [stage], "hardware": "CPU", "cpu": 1}, folder / "conduit.yaml")
    return folder / "conduit.yaml"


def ask(endpoint: str) -> list:
    response = httpx.post(endpoint, json=POINTS, headers={"Authorization": TEST_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["result"]


@pytest.fixture(scope="module")
def project(conduit_home, tmp_path_factory):
    return tmp_path_factory.mktemp("project")


@pytest.fixture(scope="module")
def first(project):
    deployment = local.apply(load(write_project(project, 1)))
    return deployment


def test_first_apply_serves_on_a_stable_endpoint(first):
    assert ask(first.endpoint) == [1, 1]
    assert first.changed and first.revision == 1 and first.api_key is None  # the key came from the environment
    assert processes.is_ours(first.pid, SUPERVISOR_MODULE)
    status = local.status(NAME)
    assert status.state == "serving" and status.serving.revision == 1
    assert Path(status.serving.log_path).name == f"{NAME}-r1.log"
    # The revision came from the standby started before the build: one log, BentoML in it.
    assert "bentoml serve" in Path(status.serving.log_path).read_text()
    assert not list(local.logs_dir(Store()).glob("standby-*"))


def test_apply_with_nothing_changed_does_nothing(first, project):
    said: list[str] = []
    again = local.apply(load(project / "conduit.yaml"), progress=said.append)
    assert not again.changed
    assert (again.revision, again.pid, again.endpoint) == (first.revision, first.pid, first.endpoint)
    assert any("Nothing changed" in line for line in said)
    assert [r.revision for r in Store().revisions(NAME)] == [1]
    assert no_idle_standbys_left()


def test_redeploy_moves_the_endpoint_under_traffic_without_failures(first, project):
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
    assert not processes.is_ours(first.pid, SUPERVISOR_MODULE)
    assert not processes.port_open(first.backend_port)
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
    assert failed.state == "failed" and not processes.is_ours(failed.pid, SUPERVISOR_MODULE)
    assert not processes.port_open(failed.port)


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


def test_a_crashed_server_is_restarted_by_its_supervisor(first):
    serving = local.status(NAME).serving
    # BentoML's arbiter under the supervisor: the child with children (its workers' stand-ins; the
    # workers themselves are forks of the supervisor, each in a session of its own).
    server = next(child for child in psutil.Process(serving.pid).children() if child.children())
    workers = [p for p in psutil.Process(serving.pid).children(recursive=True) if p.pid != server.pid]
    assert workers
    os.kill(server.pid, signal.SIGKILL)
    # The old workers may answer until the supervisor notices: wait for the restart itself.
    log = Path(serving.log_path)
    wait_for(lambda: "restarting" in log.read_text() and server.pid not in child_pids(serving.pid))
    wait_for(lambda: log.read_text().split("restarting")[-1].count("server ready") == 1)
    assert ask(first.endpoint) == [2, 2]
    assert local.status(NAME).state == "serving"
    assert not [worker.pid for worker in workers if worker.is_running()]  # the old workers were stopped


def test_apply_restarts_a_dead_router_on_the_same_port(first, project):
    record = Store().require(NAME)
    os.kill(record.router_pid, signal.SIGKILL)
    wait_for(lambda: not processes.is_ours(record.router_pid, ROUTER_MODULE))
    assert local.status(NAME).state.startswith("down (router exited")
    again = local.apply(load(write_project(project, 2)))  # the same bytes as revision 2
    assert not again.changed and again.endpoint == first.endpoint
    assert Store().require(NAME).router_pid != record.router_pid
    assert ask(first.endpoint) == [2, 2]


def no_idle_standbys_left() -> bool:
    store = Store()
    revision_pids = {r.pid for d in store.deployments() for r in store.revisions(d.name) if r.pid}
    return not idle_standbys(store.home, revision_pids) and not list(local.logs_dir(store).glob("standby-*"))




def child_pids(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children()}


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
    manifest = load(write_project(project, 2)).model_copy(update={"force_rebuild": True})
    forced = local.apply(manifest.with_base_dir(project))
    assert forced.changed and forced.revision == serving.revision + 1 and forced.tag == serving.tag
    assert ask(first.endpoint) == [2, 2]
    assert not processes.is_ours(serving.pid, SUPERVISOR_MODULE)


def test_the_plain_key_is_in_no_file_of_the_home_or_the_bentos(conduit_home, first):
    needle = TEST_KEY.encode()
    files = [path for path in Path(conduit_home).rglob("*") if path.is_file()]
    assert any(path.name == "bento.yaml" for path in files)  # the Bento store is in there
    assert any(path.suffix == ".log" for path in files)
    leaks = [str(path) for path in files if needle in path.read_bytes()]
    assert not leaks
    from conduit.serving.auth import key_sha256

    assert key_sha256(TEST_KEY).encode() in (Path(conduit_home) / "conduit.db").read_bytes()


def test_delete_stops_everything_and_forgets_the_deployment(first):
    status = local.status(NAME)
    running = [r for r in status.revisions if processes.is_ours(r.pid, SUPERVISOR_MODULE)]
    assert [r.revision for r in running] == [status.serving.revision]  # no leftovers of earlier revisions
    pids = [r.pid for r in running] + [status.record.router_pid]
    ports = [r.port for r in running] + [status.record.port]
    local.delete(NAME)
    assert not any(processes.is_ours(pid, SUPERVISOR_MODULE) or processes.is_ours(pid, ROUTER_MODULE) for pid in pids)
    assert not any(processes.port_open(port) for port in ports if port)
    assert no_idle_standbys_left()  # none left by any apply of this module, failed ones included
    with pytest.raises(DeploymentNotFound):
        local.status(NAME)
    assert Store().revisions(NAME) == []
