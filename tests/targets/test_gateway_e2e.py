"""The local gateway end to end (issue 12): one CONDUIT_HOME, one gateway on 127.0.0.1, real
replicas of real sklearn models, real kill -9s. Deployments are shared by the tests that can share
them (module fixtures, in file order): each apply costs seconds on two cores.

  zero     min 0, cooldown 2: scale to zero and back, 401 does not wake it, a connection flood, status
  slow     a pre hook that sleeps 0.2 s, max 3 replicas, 2 in flight each: scale out and back in
  steady   min 1: redeploys and a rollback under load, a failed revision, the gateway killed
  crashy   min 1, a hook that kills its worker on import once switched on: a replica killed, backoff

Nothing here asserts a duration: every wait is a bound (`wait_for`), and the one comparison of
times compares the gateway's own announced restart delays with when restarts really happened.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typing_extensions import Self

from targets.conftest import TEST_KEY, closed_by_peer, constant_project, serving_home, wait_for

pytest.importorskip("sklearn")
pytest.importorskip("bentoml")
psutil = pytest.importorskip("psutil")

MAX_CONNECTIONS = 50  # the gateway's, set before it starts (the flood test opens 300)
# The replicas' environments are made for this interpreter's version: the default (3.10) may
# not be able to install the pins of the libraries this test process trained with.
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
STEADY = {"min_replicas": 1, "max_replicas": 2, "replica_concurrency": 1}
SLOW_HOOKS = "import time\n\n\ndef slow(data):\n    time.sleep(0.2)  # a model slow enough to need more replicas\n    return data\n"


# --- projects ------------------------------------------------------------------------------------


def gateway_project(folder: Path, name: str, answer: int, hooks: str | None = None, pre: str | None = None, **fields) -> Path:
    """`constant_project` with scaling `fields`, this interpreter's Python and optionally a hooks.py
    whose `pre` function runs before the model."""
    from ruamel.yaml import YAML

    path = constant_project(folder, name, answer)
    document = YAML().load(path)
    document.update(python_version=PYTHON_VERSION, **fields)
    if hooks is not None:
        (folder / "hooks.py").write_text(hooks)
        document["flow"][0]["pre"] = f"hooks.py:{pre}"
    YAML().dump(document, path)
    return path


def switched_hooks(switch: Path, when_on: str, starts: Path | None = None) -> str:
    """A hooks.py with a pass-through `passthrough` hook whose import runs `when_on` once the file
    `switch` exists (made after the manifest was loaded, so that its import check passes); every
    import appends the time to `starts` first."""
    record = f"with open({str(starts)!r}, 'a') as _log:\n    _log.write(f'{{time.time()}}\\n')\n" if starts else ""
    return (
        f"import os\nimport time\n\n{record}"
        f"if os.path.exists({str(switch)!r}):\n    {when_on}\n\n\n"
        "def passthrough(data):\n    return data\n"
    )


def deploy(path: Path):
    from conduit.manifest.loader import load
    from conduit.targets import local

    return local.apply(load(path), progress=lambda _: None)


# --- requests ------------------------------------------------------------------------------------


def predict(endpoint: str, key: str | None = TEST_KEY, connection: http.client.HTTPConnection | None = None) -> tuple[int, dict]:
    """POST one point; (status, JSON body). On `connection` (kept alive) when given, else on a
    connection of its own (urllib)."""
    headers = {"Content-Type": "application/json", **({"Authorization": key} if key else {})}
    if connection is not None:
        connection.request("POST", urlsplit(endpoint).path, b"[[1, 2]]", headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    request = urllib.request.Request(endpoint, data=b"[[1, 2]]", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def answer(endpoint: str, **how) -> int:
    """The constant the deployment answers; fails on anything but a 200."""
    status, body = predict(endpoint, **how)
    assert status == 200, body
    return body["result"][0]


def keep_alive(endpoint: str) -> http.client.HTTPConnection:
    parts = urlsplit(endpoint)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)


def answered_eventually(endpoint: str, timeout_s: float = 120.0) -> int:
    """The answer of the first request that gets a 200 (connection errors meanwhile are retried)."""
    def attempt():
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = predict(endpoint)
            return body["result"][0] if status == 200 else None
        return None

    return wait_for(attempt, timeout_s)


class Clients:
    """Client threads sending requests back to back until stopped; each keeps its own record of
    (status, answer) or the exception a request raised."""

    def __init__(self, endpoint: str, persistent: int = 0, fresh: int = 0) -> None:
        self.endpoint = endpoint
        self.stopping = threading.Event()
        self.records: list[list] = [[] for _ in range(persistent + fresh)]
        kinds = [True] * persistent + [False] * fresh
        self.threads = [threading.Thread(target=self.run, args=(r, k), daemon=True) for r, k in zip(self.records, kinds)]

    def run(self, record: list, persistent: bool) -> None:
        connection = keep_alive(self.endpoint) if persistent else None
        while not self.stopping.is_set():
            try:
                status, body = predict(self.endpoint, connection=connection)
                record.append((status, body.get("result", [None])[0] if status == 200 else body))
            except Exception as error:  # noqa: BLE001 - every failure is the test's finding
                record.append(("raised", repr(error)))
                if connection is not None:
                    connection.close()  # http.client reconnects on the next request

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=180)

    def wait_for_each(self, count: int, timeout_s: float = 120.0) -> None:
        """Until every thread has had `count` more answers than now."""
        marks = [len(record) + count for record in self.records]
        wait_for(lambda: all(len(r) >= m for r, m in zip(self.records, marks)), timeout_s)

    def failures(self) -> list:
        return [entry for record in self.records for entry in record if entry[0] != 200]

    def answered(self) -> list:
        return [entry for record in self.records for entry in record if entry[0] == 200]


def runs_of(record: list) -> list:
    """The answers of one thread with repeats collapsed: [1, 1, 2, 2, 2, 1] -> [1, 2, 1]."""
    answers = [value for status, value in record if status == 200]
    return [value for i, value in enumerate(answers) if i == 0 or answers[i - 1] != value]


# --- what the gateway tells ------------------------------------------------------------------------


def replicas(name: str) -> list[dict]:
    from conduit.store import Store
    from conduit.targets import local

    return local.replicas_of(Store(), name)


def ready_replicas(name: str) -> list[dict]:
    return [row for row in replicas(name) if row["state"] == "ready"]


def ready_pids(name: str) -> list[int]:
    return sorted(row["pid"] for row in ready_replicas(name))


def state_pid(home: Path) -> int | None:
    from conduit.targets.local.gateway import read_state

    return read_state(home).get("pid")


def status(name: str):
    from conduit.targets import local

    return local.status(name)


def metric(endpoint: str, name: str) -> float:
    """The value of the gateway's metric `name` for the deployment (its /metrics, no key)."""
    url = endpoint.rsplit("/", 1)[0] + "/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    found = re.search(rf"^{re.escape(name)}\{{[^}}]*\}} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{name} not in {url}:\n{text[:2000]}"
    return float(found.group(1))


def gateway_log(home: Path) -> str:
    return (home / "logs" / "gateway.log").read_text(errors="replace")


def processes_of(row: dict) -> list:
    """The processes still running of the replica `row` (state.json): its leader, if it is still
    that process, and anything left in its process group."""
    left = []
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            same_leader = process.pid == row["pid"] and abs(process.create_time() - row["create_time"]) < 0.05
            if same_leader or (process.pid != row["pid"] and os.getpgid(process.pid) == row["pid"]):
                left.append(process)
    return left


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(conduit_home):
    """The module's home, its gateway (started by the first apply) limited to MAX_CONNECTIONS."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONDUIT_GATEWAY_MAX_CONNECTIONS", str(MAX_CONNECTIONS))
        yield conduit_home


@pytest.fixture(scope="module")
def zero(home, tmp_path_factory) -> str:
    path = gateway_project(tmp_path_factory.mktemp("zero"), "zero", 5, min_replicas=0, max_replicas=1, cooldown=2)
    return deploy(path).endpoint


@pytest.fixture(scope="module")
def steady(home, tmp_path_factory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("steady")
    path = gateway_project(folder / "r1", "steady", 1, **STEADY)
    return deploy(path).endpoint, folder


# --- 1, 8, 9: scale to zero and back, unauthenticated requests, a connection flood, status -------


def test_scales_to_zero_then_a_held_request_wakes_it(zero, home):
    assert answer(zero) == 5
    rows = wait_for(lambda: replicas("zero"))
    wait_for(lambda: status("zero").state == "scaled to zero" and not replicas("zero"), 60)
    assert [processes_of(row) for row in rows] == [[] for _ in rows]
    cold_starts = metric(zero, "conduit_gateway_cold_starts_total")
    held = metric(zero, "conduit_gateway_held_requests_total")

    assert answer(zero) == 5  # held while a replica starts, not dropped
    assert metric(zero, "conduit_gateway_cold_starts_total") == cold_starts + 1
    assert metric(zero, "conduit_gateway_held_requests_total") == held + 1
    assert metric(zero, "conduit_gateway_held_wait_seconds_total") > 0


def test_an_unauthenticated_request_does_not_wake_a_deployment(zero, home):
    wait_for(lambda: status("zero").state == "scaled to zero" and not replicas("zero"), 60)
    cold_starts = metric(zero, "conduit_gateway_cold_starts_total")
    log_before = len(gateway_log(home))
    for key in (None, "not-the-key"):
        status_code, body = predict(zero, key=key)
        assert (status_code, body["error"]["type"]) == (401, "unauthorized")
    time.sleep(1.0)  # several of the gateway's control ticks: a raised demand would start a replica by now
    assert metric(zero, "conduit_gateway_cold_starts_total") == cold_starts
    assert metric(zero, "conduit_gateway_queue_length") == 0
    assert "zero revision 1: replica" not in gateway_log(home)[log_before:]  # none started, none drained
    wait_for(lambda: status("zero").state == "scaled to zero" and not replicas("zero"), 60)


def test_a_flood_of_idle_connections_does_not_lock_out_a_request(zero):
    port = urlsplit(zero).port
    flood = []
    try:
        for _ in range(6 * MAX_CONNECTIONS):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        assert answer(zero) == 5
        assert answer(zero, connection=keep_alive(zero)) == 5
        # The limit was in force: the gateway closed the oldest idle ones to take the newer.
        wait_for(lambda: sum(map(closed_by_peer, flood)) >= len(flood) - MAX_CONNECTIONS, 60)
    finally:
        for connection in flood:
            connection.close()


def test_status_follows_the_deployment(zero, home):
    wait_for(lambda: status("zero").state == "scaled to zero", 60)
    idle = status("zero")
    assert (idle.replicas_ready, idle.replicas_desired, idle.endpoint) == (0, 0, zero)
    before = time.time()
    assert answer(zero) == 5
    woken = wait_for(lambda: (s := status("zero")).state == "serving" and (s.last_request_at or 0) >= before and s)
    assert (woken.replicas_ready, woken.replicas_desired) == (1, 1)
    assert woken.last_request_at > (idle.last_request_at or 0)

    printed = subprocess.run(
        [str(Path(sys.executable).with_name("conduit")), "status", "zero", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert printed.returncode == 0, printed.stderr
    document = json.loads(printed.stdout)
    assert document["replicas"] == {"ready": 1, "desired": 1}
    assert document["last_request_at"] is not None
    assert document["state"] == "serving"


# --- 2: scale out under load, back in (to zero) after it --------------------------------------


def test_scales_out_under_load_and_back_to_zero(home, tmp_path_factory):
    path = gateway_project(
        tmp_path_factory.mktemp("slow"), "slow", 3, SLOW_HOOKS, "slow",
        min_replicas=0, max_replicas=3, replica_concurrency=2, cooldown=3,
    )
    endpoint = deploy(path).endpoint
    seen = []
    with Clients(endpoint, fresh=16) as clients:
        wait_for(lambda: seen.append(status("slow").replicas_ready) or seen[-1] > 1, 180)
        clients.wait_for_each(2)
    assert clients.failures() == []
    assert {value for _, value in clients.answered()} == {3}
    assert max(seen) <= 3
    wait_for(lambda: status("slow").state == "scaled to zero" and not replicas("slow"), 120)


# --- 3, 6: redeploys and a rollback under load; a failed revision -----------------------------


def test_no_request_fails_across_redeploys_and_a_rollback(steady):
    from conduit.targets import local

    endpoint, folder = steady
    with Clients(endpoint, persistent=8, fresh=4) as clients:
        clients.wait_for_each(3)
        for revision in (2, 3):
            deploy(gateway_project(folder / f"r{revision}", "steady", revision, **STEADY))
            clients.wait_for_each(3)
        rolled = local.rollback("steady", progress=lambda _: None)
        clients.wait_for_each(3)
    assert clients.failures() == []
    assert [runs_of(record) for record in clients.records] == [[1, 2, 3, 2]] * len(clients.records)
    assert (rolled.revision, status("steady").serving.revision) == (4, 4)


def test_a_failed_revision_leaves_the_old_one_serving(steady):
    from conduit.errors import DeployError
    from conduit.manifest.loader import load
    from conduit.targets import local

    endpoint, folder = steady
    switch = folder / "refuse"
    path = gateway_project(
        folder / "broken", "steady", 9, switched_hooks(switch, "raise RuntimeError('this revision refuses to load')"),
        "passthrough", **STEADY,
    )
    manifest = load(path)
    switch.touch()
    with Clients(endpoint, persistent=4, fresh=2) as clients:
        with pytest.raises(DeployError, match="revision 5 of steady failed") as failed:
            local.apply(manifest, progress=lambda _: None)
        clients.wait_for_each(3)
    assert "revision 4 keeps serving" in str(failed.value)
    after = status("steady")
    assert [(r.revision, r.state) for r in after.revisions[-2:]] == [(4, "serving"), (5, "failed")]
    assert "this revision refuses to load" in after.revisions[-1].note
    assert clients.failures() == []
    assert {value for _, value in clients.answered()} == {2}
    assert answer(endpoint) == 2


# --- 4: the gateway killed ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def restarted(steady, zero, home) -> dict:
    """The gateway killed with -9 while `steady` serves on two replicas and `zero` is at zero; what
    was there before, once the keeper's new gateway answers on the same URL again."""
    endpoint, _ = steady
    with Clients(endpoint, fresh=8) as clients:  # more in flight than one replica's concurrency (1)
        wait_for(lambda: len(ready_replicas("steady")) == 2, 120)
    assert clients.failures() == []
    wait_for(lambda: status("zero").state == "scaled to zero" and not replicas("zero"), 60)
    before = ready_replicas("steady")
    killed = state_pid(home)
    log_before = len(gateway_log(home))
    os.kill(killed, signal.SIGKILL)

    first_answer = answered_eventually(endpoint)  # the same URL
    wait_for(lambda: state_pid(home) not in (None, killed) and replicas("steady"))
    wait_for(lambda: ready_replicas("steady"))
    return {"before": before, "killed": killed, "first_answer": first_answer, "log_since": lambda: gateway_log(home)[log_before:]}


def test_a_killed_gateway_comes_back_and_adopts_its_replicas(restarted, steady):
    endpoint, _ = steady
    assert restarted["first_answer"] == 2 and answer(endpoint) == 2
    before = sorted(row["pid"] for row in restarted["before"])
    for pid in before:
        assert f"steady revision 4: adopted replica pid {pid} on port" in restarted["log_since"]()
    assert ready_pids("steady") and set(ready_pids("steady")) <= set(before)  # the same processes serve
    assert metric(endpoint, "conduit_gateway_cold_starts_total") == 0


def test_a_restarted_gateway_keeps_the_replicas_it_adopted(restarted):
    assert ready_pids("steady") == sorted(row["pid"] for row in restarted["before"])
    assert "steady revision 4: replica 2 drains" not in restarted["log_since"]()


def test_a_restarted_gateway_leaves_a_deployment_at_zero_there(restarted, zero):
    assert metric(zero, "conduit_gateway_cold_starts_total") == 0
    assert "zero revision 1: replica" not in restarted["log_since"]()


def test_a_restarted_gateway_runs_one_zygote_per_environment(restarted, home):
    # Every deployment of this module has the same environment and preloads: one zygote serves all,
    # though the restarted gateway prepares it for each of them at once.
    assert len(wait_for(lambda: zygotes_of(home))) == 1


def zygotes_of(home: Path) -> list:
    """The home's zygote processes: children of its gateway running zygote.py (the replicas forked
    from one run the same command line, but their parent is a zygote or the keeper)."""
    gateway = psutil.Process(state_pid(home))
    found = []
    for process in gateway.children():
        with contextlib.suppress(psutil.Error):
            if any(part.endswith("zygote.py") for part in process.cmdline()):
                found.append(process)
    return found


# --- 5: a replica killed; one that crashes as it starts backs off --------------------------------


def test_a_killed_replica_restarts_and_a_crash_loop_backs_off(home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crashy")
    switch, starts = folder / "crash", folder / "starts.log"
    hooks = switched_hooks(switch, "os._exit(1)  # dies at once on every start, as a crash-looping model", starts)
    endpoint = deploy(gateway_project(folder / "project", "crashy", 8, hooks, "passthrough", min_replicas=1, max_replicas=1)).endpoint
    assert answer(endpoint) == 8

    (first,) = replicas("crashy")
    os.kill(first["pid"], signal.SIGKILL)
    assert answer(endpoint) == 8  # held while it restarts
    (second,) = wait_for(lambda: [r for r in ready_replicas("crashy") if r["pid"] != first["pid"]])
    wait_for(lambda: processes_of(first) == [], 30)  # its worker went with it

    switch.touch()
    began = len(starts.read_text().splitlines())
    killed_at = time.time()
    os.kill(second["pid"], signal.SIGKILL)
    with Clients(endpoint, fresh=1) as held:
        delays = wait_for(lambda: len(found := announced_delays(home, "crashy")) >= 4 and found, 180)
        switch.unlink()  # the next start succeeds: the held request is answered
        held.wait_for_each(1, 180)
    assert held.failures() == [] and held.answered()[0][1] == 8
    assert delays[:4] == [1, 2, 4, 8]  # the first kill, the second, then two crashes at start
    attempts = [killed_at, *(float(line) for line in starts.read_text().splitlines()[began:])]
    # Each restart came no sooner after the kill or crash before it than the gateway announced.
    for (earlier, later), delay in zip(zip(attempts, attempts[1:]), delays[1:]):
        assert later - earlier >= delay


def announced_delays(home: Path, name: str) -> list[int]:
    return [int(d) for d in re.findall(rf"^\[conduit gateway\] {name} revision \d+: restarting a replica in (\d+)s$", gateway_log(home), re.MULTILINE)]


# --- 7: the port taken --------------------------------------------------------------------------


def test_apply_refuses_a_taken_port_and_deploys_nothing(tmp_path, monkeypatch):
    from conduit.errors import DeployError
    from conduit.store import Store
    from conduit.targets import local

    with socket.create_server(("127.0.0.1", 0)) as taken, serving_home(tmp_path / "home"):
        monkeypatch.setenv("CONDUIT_PORT", str(taken.getsockname()[1]))
        with pytest.raises(DeployError, match="CONDUIT_PORT") as refused:
            deploy(gateway_project(tmp_path / "project", "taken", 1))
        assert f"port {taken.getsockname()[1]} on 127.0.0.1 is taken" in str(refused.value)
        assert Store().deployments() == [] and local.running_gateway(Store()) is None
