"""Issue 16, items 2, 5 and 6, on real sklearn deployments behind the gateway: nothing conduit runs
listens on TCP but the gateway's port and each replica's HTTP port (no control port: a zygote takes
its orders on an unnamed socket pair), each deployment's /metrics counts its own requests and
survives another's start, and a gateway killed outright with its keeper leaves replicas that
`status` reports as down and `delete` / `apply` stop."""
from __future__ import annotations

import os
import pickle
import re
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
from conduit.targets import local
from conduit.targets.local import processes
from conduit.targets.local.gateway import read_state
from conftest import TEST_KEY, alive, gateway_processes, metrics_url, replicas_of, wait_for

pytestmark = pytest.mark.e2e
POINT = [[0.5, 1.5]]


def project(folder: Path, name: str, answer: int = 1) -> Path:
    """A deployment `name` whose model answers `answer` (a real, fitted sklearn estimator)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = DummyClassifier(strategy="constant", constant=answer).fit([[i, i] for i in range(5)], list(range(5)))
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    stage = {"model_type": "sklearn", "path": "model.pkl"}
    # One replica kept warm: a deployment scaled to zero has no replica to read metrics from.
    document = {"name": name, "flow": [stage], "hardware": "CPU", "cpu": 1, "min_replicas": 1}
    YAML().dump(document, folder / "conduit.yaml")
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


def test_nothing_listens_but_the_gateway_and_the_replicas_http_ports(deploy):
    deployment = deploy("ports")
    assert ask(deployment) == [1]
    everyone = gateway_processes()
    assert len(everyone) >= 5  # keeper, gateway, zygote, a replica's leader, its worker
    listening = {
        (connection.laddr.ip, connection.laddr.port)
        for process in everyone
        for connection in process.net_connections("inet")
        if connection.status == psutil.CONN_LISTEN
    }
    replica_ports = {("127.0.0.1", row["port"]) for row in read_state(Store().home)["replicas"]}
    assert listening == {("127.0.0.1", deployment.port), *replica_ports}
    named = {connection.laddr for process in everyone for connection in process.net_connections("unix") if connection.laddr}
    for folder in {Path(path).parent for path in named}:  # any named socket is in a private folder
        mode = folder.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == os.getuid(), folder


def predictions_counted(deployment: local.Deployment) -> float:
    """conduit_predict_requests_total{status="200"} on the deployment's /metrics."""
    text = httpx.get(metrics_url(deployment.endpoint), timeout=30).text
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


def kill_gateway_and_keeper(deployment: local.Deployment) -> list[psutil.Process]:
    """SIGKILL the keeper and the gateway; returns the deployment's replicas' processes (leaders
    and workers), which serve on without them."""
    rows = wait_for(lambda: replicas_of(deployment.name))
    started = [process for row in rows for process in (psutil.Process(row["pid"]), *psutil.Process(row["pid"]).children())]
    keeper, gateway = gateway_processes()[:2]
    for process in (keeper, gateway):
        process.kill()
    psutil.wait_procs([keeper, gateway], timeout=30)
    wait_for(lambda: local.running_gateway(Store()) is None)
    return started


def test_a_killed_gateway_leaves_replicas_that_status_reports_down_and_delete_stops(deploy):
    deployment = deploy("orphans-delete")
    started = kill_gateway_and_keeper(deployment)
    assert local.status(deployment.name).state == "down (the gateway is not running; conduit apply starts it again)"
    ports = [row["port"] for row in replicas_of(deployment.name)]
    assert all(processes.port_open(port) for port in ports)  # serving, with nobody watching it
    said: list[str] = []
    local.delete(deployment.name, progress=said.append)
    assert said == ["🗑️  Deleted orphans-delete: stopped 1 replica"]
    assert not [process.pid for process in started if alive(process.pid)]
    assert not processes.writers_of(local.logs_dir(Store()) / "orphans-delete-r1.log")
    assert not any(processes.port_open(port) for port in ports)
    assert not local.metrics_dir(Store(), deployment.name).exists()


def test_apply_after_a_killed_gateway_serves_a_new_revision_and_stops_the_old_replicas(deploy):
    old = deploy("orphans-apply", answer=1)
    started = kill_gateway_and_keeper(old)
    new = deploy("orphans-apply", answer=2)
    assert new.revision == old.revision + 1 and ask(new) == [2]
    assert new.endpoint == old.endpoint
    wait_for(lambda: local.status(new.name).state == "serving")
    # The new gateway adopted revision 1's replica, then drained it once revision 2 served.
    wait_for(lambda: not replicas_of(new.name, old.revision))
    assert not [process.pid for process in started if alive(process.pid)]
    assert not processes.writers_of(local.logs_dir(Store()) / f"orphans-apply-r{old.revision}.log")
