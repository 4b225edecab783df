"""The supervisor and the router with a tiny real HTTP server as the served process."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from conduit.targets import processes
from conduit.targets.processes import ROUTER_MODULE, SUPERVISOR_MODULE

from conftest import wait_for

ECHO = str(Path(__file__).parent / "echo_server.py")


def supervised(tmp_path: Path, name: str, command: list[str] | None = None, port: int | None = None):
    port = port or processes.free_port()
    command = command or [sys.executable, ECHO, str(port), name]
    supervisor = processes.module_command(
        SUPERVISOR_MODULE, "--ready-url", f"http://127.0.0.1:{port}/readyz", "--", *command
    )
    pid = processes.start_detached(supervisor, tmp_path / f"{name}.log", dict(os.environ))
    return pid, port


@pytest.fixture
def cleanup():
    started: list[tuple[int, str]] = []
    yield started
    for pid, module in started:
        processes.stop(pid, module, grace_s=5)


def served_pid(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/").json()["pid"]


def test_supervisor_restarts_a_crashed_server_and_stops_cleanly(tmp_path, cleanup):
    pid, port = supervised(tmp_path, "a")
    cleanup.append((pid, SUPERVISOR_MODULE))
    processes.wait_ready(port, pid, SUPERVISOR_MODULE, 30)
    first = served_pid(port)
    # Let the supervisor see the server ready before it crashes.
    wait_for(lambda: "server ready" in (tmp_path / "a.log").read_text())
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: processes.is_ready(port) and served_pid(port) != first)
    assert processes.is_ours(pid, SUPERVISOR_MODULE)
    assert "restarting" in (tmp_path / "a.log").read_text()

    second = served_pid(port)
    processes.stop(pid, SUPERVISOR_MODULE)
    assert not processes.is_ours(pid, SUPERVISOR_MODULE)
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE
    assert not processes.port_open(port)


def test_a_server_that_never_gets_ready_is_not_restarted(tmp_path, cleanup):
    crash = [sys.executable, "-c", "import sys; print('boom at import', flush=True); sys.exit(3)"]
    pid, port = supervised(tmp_path, "b", crash)
    cleanup.append((pid, SUPERVISOR_MODULE))
    with pytest.raises(processes.NotReady, match="exited before it was ready"):
        processes.wait_ready(port, pid, SUPERVISOR_MODULE, 30)
    log = processes.log_tail(tmp_path / "b.log")
    assert "boom at import" in log and "not restarting" in log


def start_router(tmp_path: Path, backend_file: Path, cleanup) -> int:
    listener = processes.listening_socket(0)
    command = processes.module_command(ROUTER_MODULE, "--fd", str(listener.fileno()), "--backend-file", str(backend_file))
    pid = processes.start_detached(command, tmp_path / "router.log", dict(os.environ), pass_fds=[listener.fileno()])
    port = listener.getsockname()[1]
    listener.close()
    cleanup.append((pid, ROUTER_MODULE))
    return port


def test_router_follows_the_backend_file(tmp_path, cleanup):
    backend_file = tmp_path / "iris.backend"
    port = start_router(tmp_path, backend_file, cleanup)
    url = f"http://127.0.0.1:{port}/predict"

    unavailable = httpx.post(url, json=[[1]])
    assert unavailable.status_code == 503
    assert unavailable.json()["error"]["type"] == "unavailable"

    for name in ("blue", "green"):
        pid, backend_port = supervised(tmp_path, name)
        cleanup.append((pid, SUPERVISOR_MODULE))
        processes.wait_ready(backend_port, pid, SUPERVISOR_MODULE, 30)
        backend_file.write_text(f"{backend_port}\n")
        with httpx.Client() as client:  # a fresh connection goes to the new backend
            echoed = client.post(url, content=b"[[1, 2]]", headers={"Authorization": "k"}).json()
        assert echoed["name"] == name
        assert echoed["body"] == "[[1, 2]]" and echoed["headers"]["authorization"] == "k"


def test_router_passes_large_bodies_and_many_requests_on_one_connection(tmp_path, cleanup):
    backend_file = tmp_path / "iris.backend"
    port = start_router(tmp_path, backend_file, cleanup)
    pid, backend_port = supervised(tmp_path, "big")
    cleanup.append((pid, SUPERVISOR_MODULE))
    processes.wait_ready(backend_port, pid, SUPERVISOR_MODULE, 30)
    backend_file.write_text(f"{backend_port}\n")
    body = b"x" * (3 * 1024 * 1024)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert len(client.post("/predict", content=body).json()["body"]) == len(body)
        for i in range(50):
            assert client.post("/predict", content=str(i).encode()).json()["body"] == str(i)


def test_router_passes_a_half_close_on_and_still_delivers_the_response(tmp_path, cleanup):
    """A client that shuts its sending side after the request (HTTP/1.0 style) gets the answer."""
    import socket

    backend_file = tmp_path / "iris.backend"
    port = start_router(tmp_path, backend_file, cleanup)
    pid, backend_port = supervised(tmp_path, "half")
    cleanup.append((pid, SUPERVISOR_MODULE))
    processes.wait_ready(backend_port, pid, SUPERVISOR_MODULE, 30)
    backend_file.write_text(f"{backend_port}\n")
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]
    assert b'"body": "hello"' in body and b'"name": "half"' in body
