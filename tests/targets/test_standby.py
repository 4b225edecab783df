"""The standby: a revision's supervisor started before its Bento exists, with a tiny real HTTP
server as the revision it is handed (the BentoML path runs in the lifecycle tests)."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from conduit.targets import processes
from conduit.targets.processes import SUPERVISOR_MODULE
from conduit.targets.standby import STANDBY_ENV, Standby

ECHO = str(Path(__file__).parent / "echo_server.py")


@pytest.fixture
def standby(tmp_path):
    started = Standby.start(tmp_path / "logs")
    assert started is not None
    yield started
    started.dismiss()
    processes.stop(started.process.pid, SUPERVISOR_MODULE, grace_s=5)


def test_a_handed_standby_serves_the_revision_and_logs_into_its_log(standby, tmp_path):
    port = processes.free_port()
    log_path = tmp_path / "logs" / "echo-r1.log"
    pid = standby.hand([sys.executable, ECHO, str(port), "echo"], f"http://127.0.0.1:{port}/readyz", log_path, {})
    assert pid == standby.process.pid
    processes.wait_ready(port, pid, SUPERVISOR_MODULE, 60)
    assert httpx.get(f"http://127.0.0.1:{port}/").json()["name"] == "echo"
    assert "starting" in log_path.read_text()
    assert not standby.log_path.exists()  # what it logged before the order moved into the revision's log
    processes.stop(pid, SUPERVISOR_MODULE)
    assert not processes.port_open(port)


def test_a_dismissed_standby_leaves_no_process_and_no_log(standby, tmp_path):
    pid = standby.process.pid
    assert [process.pid for process in idle_standbys(tmp_path, set())] == [pid]
    standby.dismiss()
    assert not idle_standbys(tmp_path, set())
    assert not processes.is_ours(pid, SUPERVISOR_MODULE)
    assert not standby.log_path.exists()


def test_a_standby_that_died_is_not_handed_anything(standby, tmp_path):
    os.kill(standby.process.pid, signal.SIGKILL)
    standby.process.wait()
    assert standby.hand(["true"], "http://127.0.0.1:1/readyz", tmp_path / "r1.log", {}) is None
    assert not standby.log_path.exists()


def test_the_standby_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv(STANDBY_ENV, "0")
    assert Standby.start(tmp_path) is None
    assert not list(tmp_path.iterdir())


def idle_standbys(home: Path, revision_pids: set[int]) -> list[psutil.Process]:
    """Standby processes started for `home` that never became a revision: their command line
    names their log under `home`; a handed one is a revision's supervisor (or its forked server)."""
    found = []
    for process in psutil.process_iter(["cmdline", "ppid"]):
        command = " ".join(process.info["cmdline"] or [])
        if "--standby" in command and str(home) in command:
            if process.pid not in revision_pids and process.info["ppid"] not in revision_pids:
                found.append(process)
    return found
