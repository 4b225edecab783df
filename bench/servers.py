"""Start and stop the server processes a contender needs; every one binds 127.0.0.1 and is stopped."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

READY_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One server process (and its workers, in its own session) with its log in a file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.command, self.env, self.log_path, self.cwd, self.pass_fds = command, env, log_path, cwd, pass_fds
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            pass_fds=self.pass_fds,
        )
        log.close()

    def wait_ready(self, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log: {self.log_tail()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s; log: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the server (it stops its workers), then the whole session it started if needed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def tree_cpu_seconds(roots: list[int], alone: tuple[int, ...] = ()) -> float:
    """User + system CPU seconds so far of these processes and everything under them, and of the
    `alone` ones without their children (the gateway: its replicas are counted per deployment),
    each process once."""
    import psutil

    processes: dict[int, psutil.Process] = {}
    for pid in (*roots, *alone):
        try:
            parent = psutil.Process(pid)
            tree = (parent,) if pid in alone else (parent, *parent.children(recursive=True))
        except psutil.Error:
            continue
        processes.update((process.pid, process) for process in tree)
    total = 0.0
    for process in processes.values():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def post_json(url: str, body: bytes, auth: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    return httpx.post(url, content=body, headers=headers, timeout=30.0)
