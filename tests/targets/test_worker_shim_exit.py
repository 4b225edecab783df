"""Issue 16 item 10: a forked worker killed outright logged a traceback from its stand-in (it tried
to reset SIGKILL's handler). The stand-in, against a fork server played by the test: it ends as
its worker did, with one line when the worker was killed from outside and none when stopped."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conduit.targets.forkserver import SOCKET_ENV, shim_command


def run_stand_in(tmp_path, worker_exit: int, forward: signal.Signals | None = None) -> subprocess.CompletedProcess:
    """The stand-in for a (sleeping) worker that the test's fork server says ended with `worker_exit`;
    with `forward`, that signal is sent to the stand-in first, as the arbiter stops a worker."""
    dies_of_signals = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_DFL); print(flush=True); time.sleep(60)"
    worker = subprocess.Popen([sys.executable, "-c", dies_of_signals], stdout=subprocess.PIPE)
    worker.stdout.readline()  # SIGINT may be ignored where the test runs: not once this line is out
    path = str(tmp_path / "fork.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    stand_in = subprocess.Popen(
        [str(shim_command(tmp_path)), "-c", "pass"], env={**os.environ, SOCKET_ENV: path}, stderr=subprocess.PIPE, text=True
    )
    try:
        connection, _ = listener.accept()
        for fd in socket.recv_fds(connection, 1 << 20, 253)[1]:
            os.close(fd)  # the stand-in's own (its stderr pipe among them): a fork server hands them to the worker
        connection.sendall(json.dumps({"pid": worker.pid}).encode())
        if forward is not None:
            wait_until_caught(stand_in.pid, signal.SIGUSR2)  # the last it sets (Python itself catches SIGINT)
            stand_in.send_signal(forward)
            assert worker.wait(30) == -forward  # passed on to the worker
        connection.sendall(json.dumps({"exit": worker_exit}).encode())
        _, stderr = stand_in.communicate(timeout=30)
        return subprocess.CompletedProcess(stand_in.args, stand_in.returncode, "", stderr)
    finally:
        worker.kill()
        worker.communicate()
        listener.close()


def wait_until_caught(pid: int, signum: int) -> None:
    """Until the process has a handler for `signum` (the stand-in sets them after the reply)."""
    def caught() -> bool:
        with open(f"/proc/{pid}/status") as status:
            mask = next(line for line in status if line.startswith("SigCgt:")).split()[1]
        return bool(int(mask, 16) >> (signum - 1) & 1)

    while not caught():
        time.sleep(0.01)


def test_a_worker_killed_outright_gets_one_line_and_no_traceback(tmp_path):
    done = run_stand_in(tmp_path, -signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("[conduit worker] worker ")
    assert done.stderr.splitlines()[-1].endswith(" was ended by SIGKILL; BentoML's arbiter starts another")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_the_arbiter_stops_ends_the_same_way_without_a_word(tmp_path, stop):
    done = run_stand_in(tmp_path, -stop, forward=stop)
    assert (done.returncode, done.stderr) == (-stop, "")


@pytest.mark.parametrize("code", [0, 3])
def test_a_worker_that_exits_passes_its_code_on(tmp_path, code):
    done = run_stand_in(tmp_path, code)
    assert (done.returncode, done.stderr) == (code, "")
