"""Issue 16, items 2, 5 and 6, on real sklearn deployments: a deployment listens on its HTTP ports
only (BentoML's arbiter takes its commands on Unix sockets in a private folder), each deployment's
/metrics counts its own requests and survives another's start, and a supervisor killed outright
leaves processes that `status` reports and `delete` / `apply` stop."""
from __future__ import annotations

import os
import pickle
import re
import signal
import stat
from pathlib import Path

import httpx
import psutil
import pytest
from ruamel.yaml import YAML

pytest.importorskip("sklearn")  # every test here serves a real sklearn model
from sklearn.dummy import DummyClassifier

from conduit.manifest import load
from conduit.store import Store
from conduit.targets import local, processes

from conftest import TEST_KEY, wait_for

pytestmark = pytest.mark.e2e
POINT = [[0.5, 1.5]]


def project(folder: Path, name: str, answer: int = 1) -> Path:
    """A deployment `name` whose model answers `answer` (a real, fitted sklearn estimator)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = DummyClassifier(strategy="constant", constant=answer).fit([[i, i] for i in range(5)], list(range(5)))
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    stage = {"model_type": "sklearn", "path": "model.pkl"}
    YAML().dump({"name": name, "flow": [stage], "hardware": "CPU", "cpu": 1}, folder / "conduit.yaml")
    return folder / "conduit.yaml"


@pytest.fixture(scope="module")
def deploy(conduit_home, tmp_path_factory):
    def apply(name: str, answer: int = 1) -> local.Deployment:
        return local.apply(load(project(tmp_path_factory.mktemp(name), name, answer)), progress=lambda _: None)

    return apply


def ask(deployment: local.Deployment) -> list:
    response = httpx.post(deployment.endpoint, json=POINT, headers={"Authorization": TEST_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def processes_of(deployment: local.Deployment) -> list[psutil.Process]:
    """The router, the supervisor and everything it started (BentoML's arbiter, the workers it
    forked, the arbiter's children), found from the process tree."""
    record = local.status(deployment.name).record
    supervisor = psutil.Process(deployment.pid)
    return [psutil.Process(record.router_pid), supervisor, *supervisor.children(recursive=True)]


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_deployment_listens_on_its_http_ports_only_and_the_arbiter_on_private_sockets(deploy):
    deployment = deploy("ports")
    everyone = processes_of(deployment)
    assert len(everyone) >= 4  # router, supervisor, arbiter, a worker
    listening = {
        (connection.laddr.ip, connection.laddr.port)
        for process in everyone
        for connection in process.net_connections("inet")
        if connection.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", deployment.port), ("127.0.0.1", deployment.backend_port)}
    unix_sockets = {connection.laddr for process in everyone for connection in process.net_connections("unix")}
    arbiter_sockets = [Path(path) for path in unix_sockets if path and Path(path).name in ("controller", "pubsub")]
    assert len(arbiter_sockets) == 2
    for folder in {path.parent for path in arbiter_sockets}:
        mode = folder.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == os.getuid()
    assert ask(deployment) == [1]


def predictions_counted(deployment: local.Deployment) -> float:
    """conduit_predict_requests_total{status="200"} on the deployment's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{deployment.port}/metrics", timeout=30).text
    counts = re.findall(r'^conduit_predict_requests_total\{status="200"\} (\S+)$', text, re.MULTILINE)
    return sum(float(count) for count in counts)


def test_each_deployment_counts_its_own_requests_and_another_start_wipes_none(deploy):
    first, second = deploy("count-a"), deploy("count-b")
    for deployment, requests in ((first, 3), (second, 2)):
        for _ in range(requests):
            ask(deployment)
    assert (predictions_counted(first), predictions_counted(second)) == (3, 2)
    third = deploy("count-c")
    assert (predictions_counted(first), predictions_counted(second), predictions_counted(third)) == (3, 2, 0)
    folders = {Path(p).parent for p in local.metrics_dir(Store(), "count-a").glob("r*/*.db")}
    assert folders == {local.metrics_dir(Store(), "count-a", first.revision)}
    assert stat.S_IMODE(local.metrics_dir(Store(), "count-a").stat().st_mode) == 0o700


def kill_supervisor(deployment: local.Deployment) -> list[psutil.Process]:
    """SIGKILL the supervisor alone; returns what it had started (which serves on without it)."""
    started = psutil.Process(deployment.pid).children(recursive=True)
    os.kill(deployment.pid, signal.SIGKILL)
    wait_for(lambda: local.status(deployment.name).orphans)
    return started


def test_a_killed_supervisor_leaves_orphans_that_status_reports_and_delete_stops(deploy):
    deployment = deploy("orphans-delete")
    started = kill_supervisor(deployment)
    state = local.status(deployment.name).state
    assert re.fullmatch(
        r"down \(its supervisor is gone, \d+ orphaned process(es)? still running; "
        r"run conduit apply or conduit delete to stop them\)",
        state,
    ), state
    assert processes.port_open(deployment.backend_port)  # what the issue saw: serving, unsupervised
    said: list[str] = []
    local.delete(deployment.name, progress=said.append)
    assert said == ["🗑️  Deleted orphans-delete: stopped revision 1 and its router"]
    assert not [process.pid for process in started if alive(process)]
    assert not processes.writers_of(local.logs_dir() / "orphans-delete-r1.log")  # the arbiter's new workers too
    assert not processes.port_open(deployment.backend_port)
    assert not local.metrics_dir(Store(), deployment.name).exists()


def test_apply_after_a_killed_supervisor_serves_a_new_revision_and_stops_the_orphans(deploy):
    old = deploy("orphans-apply", answer=1)
    started = kill_supervisor(old)
    new = deploy("orphans-apply", answer=2)
    assert new.revision == old.revision + 1 and ask(new) == [2]
    assert local.status(new.name).state == "serving"
    assert not [process.pid for process in started if alive(process)]
    assert not processes.writers_of(local.logs_dir() / f"orphans-apply-r{old.revision}.log")
    assert not processes.port_open(old.backend_port)
