"""The fork server: which workers it forks, the stand-in BentoML's arbiter runs as `python`, and a
real revision whose workers are forks of its supervisor (served, restarted after a worker or its
stand-in is killed, stopped)."""
from __future__ import annotations

import os
import signal
import subprocess

import httpx
import psutil
import pytest

from conduit.targets import local
from conduit.targets.forkserver import SOCKET_ENV, ForkServer, shim_command

from conftest import TEST_KEY, wait_for
from serving.trained import iris_folder

WORKER = ["-m", "_bentoml_impl.worker.service", "iris:abc", "--fd", "3"]


@pytest.fixture
def server():
    forkserver = ForkServer(print)
    forkserver.env = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "1"}  # as if preloaded under this environment
    yield forkserver
    forkserver.close()


def request(env: dict[str, str], argv: list[str] = WORKER) -> dict:
    return {"argv": argv, "cwd": "/", "env": env, "fds": [0, 1, 2, 3]}


def test_a_worker_with_the_preloaded_environment_is_forked(server):
    assert server.why_not_this_worker(request({"PATH": "/usr/bin", "OMP_NUM_THREADS": "1"})) is None
    # What BentoML sets per worker, and reads only at run time, may differ.
    runtime_only = {"BENTOML_RUNNER_MAP": "{}", "PROMETHEUS_MULTIPROC_DIR": "/tmp/p", "CUDA_VISIBLE_DEVICES": "0"}
    assert server.why_not_this_worker(request({"PATH": "/usr/bin", "OMP_NUM_THREADS": "1", **runtime_only})) is None


def test_a_worker_whose_libraries_would_load_differently_starts_fresh(server):
    reason = server.why_not_fork(request({"PATH": "/usr/bin", "OMP_NUM_THREADS": "4", "MKL_CBWR": "AVX2"}))
    assert reason in (
        "the worker's environment differs from the preloaded one in MKL_CBWR, OMP_NUM_THREADS",
        server.why_not_forkable(),  # this test process may run threads (NumPy's, PyTorch's)
    )
    assert server.why_not_this_worker(request({"PATH": "/usr/bin", "OMP_NUM_THREADS": "4", "MKL_CBWR": "AVX2"})) == (
        "the worker's environment differs from the preloaded one in MKL_CBWR, OMP_NUM_THREADS"
    )


def test_only_bentoml_workers_are_forked(server):
    reason = server.why_not_this_worker(request(server.env, ["-c", "print(1)"]))
    assert reason == "not a BentoML worker command: -c print(1)"


def test_nothing_is_forked_before_the_preload_or_after_a_thread_started(server):
    server.unsafe = "importing x started a thread, and threads do not survive a fork"
    assert server.why_not_fork(request(server.env)) == server.unsafe
    server.env = None
    assert server.why_not_fork(request({})) == "nothing was preloaded"


def test_a_process_running_threads_is_not_forked(server):
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert server.why_not_forkable() == "the supervisor runs more than one thread, and threads do not survive a fork"
    finally:
        stop.set()
        thread.join()


def test_the_stand_in_without_a_fork_server_is_plain_python(tmp_path):
    python = shim_command(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    done = subprocess.run([str(python), "-c", "import sys; print(sys.argv[1:])", "a b"], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "['a b']\n", "")


def test_the_stand_in_says_why_when_the_fork_server_is_unreachable(tmp_path):
    python = shim_command(tmp_path)
    env = {**os.environ, SOCKET_ENV: str(tmp_path / "gone")}
    done = subprocess.run([str(python), "-c", "import os; print(os.environ.get('CONDUIT_FORKSERVER_SOCKET'))"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "None\n"  # the socket's address is not passed on
    assert "starting without the fork server: FileNotFoundError" in done.stderr


# --- a real revision ----------------------------------------------------------------------------


def forked_workers(supervisor_pid: int) -> list[psutil.Process]:
    """The supervisor's children other than BentoML's arbiter (the parent of the stand-ins)."""
    supervisor = psutil.Process(supervisor_pid)
    stand_ins = [p for p in supervisor.children(recursive=True) if "worker_shim.py" in " ".join(command_of(p))]
    arbiters = {p.ppid() for p in stand_ins}
    return [p for p in supervisor.children() if p.pid not in arbiters and command_of(p)]


def command_of(process: psutil.Process) -> list[str]:
    """Its command line; none once it exited (a zombie until its parent reaps it)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def predict(endpoint: str) -> list:
    response = httpx.post(endpoint, json=[[5.1, 3.5, 1.4, 0.2]], headers={"Authorization": TEST_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["result"]


@pytest.mark.e2e
def test_a_revision_serves_from_workers_forked_by_its_supervisor(conduit_home, tmp_path):
    deployment = local.apply(iris_folder(tmp_path, name="forked", cpu=2))
    try:
        log = wait_for(lambda: (text := local.log_path("forked").read_text()).count("Service forked initialized") == 2 and text)
        assert "without the fork server" not in log
        workers = wait_for(lambda: len(forked_workers(deployment.pid)) == 2 and forked_workers(deployment.pid))
        first = predict(deployment.endpoint)

        # A worker killed outright is started again by BentoML's arbiter, forked again.
        killed = workers[0].pid
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: {p.pid for p in forked_workers(deployment.pid)} - {killed, workers[1].pid})
        assert wait_for(lambda: "Service forked initialized" in local.log_path("forked").read_text().split(log)[-1])
        for _ in range(6):
            assert predict(deployment.endpoint) == first

        # A stand-in killed outright takes its worker with it; the arbiter starts both again.
        before = {p.pid for p in forked_workers(deployment.pid)}
        stand_in = next(p for p in psutil.Process(deployment.pid).children(recursive=True)
                        if "worker_shim.py" in " ".join(command_of(p)))
        os.kill(stand_in.pid, signal.SIGKILL)
        wait_for(lambda: len(before - {p.pid for p in forked_workers(deployment.pid)}) == 1)
        wait_for(lambda: len(forked_workers(deployment.pid)) == 2)
        for _ in range(6):
            assert predict(deployment.endpoint) == first
        tree = psutil.Process(deployment.pid).children(recursive=True)
    finally:
        local.delete("forked")
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive
    assert not psutil.pid_exists(deployment.pid) or psutil.Process(deployment.pid).status() == psutil.STATUS_ZOMBIE
