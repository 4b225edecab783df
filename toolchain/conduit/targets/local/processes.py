"""Background processes of the local target: start detached, check, stop, read their logs.

Every process conduit starts is a session leader (its pid is its process group), runs one of
conduit's own modules (so a recycled pid is never mistaken for ours), and writes to a log file.

A revision's processes are found by that log: every replica of it writes its output to the
revision's log, however it was re-parented or re-sessioned, so replicas a gateway killed outright
left behind are still findable, and no unrelated process (a recycled pid) carries that mark.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import psutil  # a BentoML dependency, so always present where conduit serves


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def listening_socket(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A bound, listening socket to hand to the gateway's keeper, so the port is never briefly free."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def module_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def start_detached(command: Sequence[str], log_path: Path, env: dict[str, str], pass_fds: Sequence[int] = ()) -> int:
    """Start `command` in a new session, appending its output to `log_path`; returns its pid.
    It outlives the conduit command that started it."""
    return spawn_detached(command, log_path, env, pass_fds).pid


def spawn_detached(
    command: Sequence[str], log_path: Path, env: dict[str, str], pass_fds: Sequence[int] = (), stdin: int = subprocess.DEVNULL
) -> subprocess.Popen:
    """`start_detached`, returning the Popen (pass `stdin=subprocess.PIPE` to talk to it)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            close_fds=True,
        )
    # Reap it in the background if this conduit process lives on (tests, the Python API),
    # so a stopped child does not linger as a zombie that looks alive.
    _children.append(process)
    return process


_children: list[subprocess.Popen] = []


def _reap() -> None:
    for process in list(_children):
        if process.poll() is not None:
            _children.remove(process)


def is_ours(pid: Optional[int], module: str) -> bool:
    """Whether `pid` is alive and is the conduit process we started (not a recycled pid)."""
    if not pid:
        return False
    _reap()
    started_here = next((p for p in _children if p.pid == pid), None)
    if started_here is not None:
        return started_here.poll() is None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return module in " ".join(process.cmdline())
    except (psutil.Error, OSError):
        return False


def stop(pid: Optional[int], module: str, grace_s: float = 30.0) -> None:
    """SIGTERM the process, wait up to `grace_s`, then kill it and all it started (`kill_tree`)."""
    if not is_ours(pid, module):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not is_ours(pid, module):
            return
        time.sleep(0.05)
    kill_tree(pid)
    for _ in range(100):
        if not is_ours(pid, module):
            return
        time.sleep(0.05)


def stop_writers_of(log_path: Optional[str | Path], grace_s: float = 10.0) -> int:
    """Stop whatever still writes a revision's log (its replicas, however re-parented: a gateway
    killed outright cannot stop them); returns how many processes ran."""
    running = len(writers_of(log_path))
    if running:
        stop_writers(log_path, grace_s)
    return running


def writers_of(log_path: Optional[str | Path]) -> list[psutil.Process]:
    """The live processes whose standard output is `log_path` (read from /proc: Linux)."""
    if not log_path:
        return []
    target = os.path.realpath(log_path)
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(OSError):  # gone, a zombie (no descriptors), or not ours to read
            if os.readlink(f"/proc/{process.pid}/fd/1") == target:
                found.append(process)
    return found


def stop_writers(log_path: Optional[str | Path], grace_s: float = 10.0) -> None:
    """SIGTERM every process writing `log_path` (BentoML's arbiter then stops its workers), and
    SIGKILL whatever is left after `grace_s`."""
    if not signal_until_gone(log_path, signal.SIGTERM, grace_s):
        signal_until_gone(log_path, signal.SIGKILL, 30.0)


def signal_until_gone(log_path: Optional[str | Path], signum: int, timeout_s: float) -> bool:
    """Send `signum` to every process writing `log_path`, once each, until none is left (one an
    arbiter starts meanwhile gets it too); whether none is left within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    signalled: set[int] = set()
    while left := writers_of(log_path):
        if time.monotonic() > deadline:
            return False
        for process in left:
            if process.pid not in signalled:
                with contextlib.suppress(psutil.Error):
                    process.send_signal(signum)
                signalled.add(process.pid)
        time.sleep(0.1)
    return True


def kill_tree(root: int, keep_root: bool = False) -> list[psutil.Process]:
    """SIGKILL `root` (unless `keep_root`), its descendants and the rest of its process group;
    returns the processes killed. BentoML starts each worker in a session of its own, so the
    process group alone would miss them."""
    try:
        group = os.getpgid(root)
        doomed = {process.pid: process for process in psutil.Process(root).children(recursive=True)}
    except (ProcessLookupError, psutil.Error):
        return []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(process.pid) == group:
                doomed.setdefault(process.pid, process)
    if keep_root:
        doomed.pop(root, None)
    for process in doomed.values():
        with contextlib.suppress(psutil.Error):
            process.kill()
    return list(doomed.values())


def answers_ready(url: str, timeout_s: float = 2.0) -> bool:
    """Whether the readiness URL answers 200 within `timeout_s`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except OSError:
        return False


_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt): .+")
# BentoML's arbiter reports "no workers left" after the real error; it says nothing of the cause.
_WRAPPER_ERRORS = ("No active process found for watcher",)


def first_cause(path: Optional[str | Path]) -> Optional[str]:
    """The exception that made a server fail, read from its log (the last one that is not
    BentoML's own "no workers left" wrapper), or None."""
    if not path or not Path(path).exists():
        return None
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    causes = [line.strip() for line in text.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    causes = [line for line in causes if not any(wrapper in line for wrapper in _WRAPPER_ERRORS)]
    return causes[-1] if causes else None


def log_tail(path: Optional[str | Path], lines: int = 20) -> str:
    if not path or not Path(path).exists():
        return ""
    with open(path, "rb") as handle:
        return b"".join(deque(handle, maxlen=lines)).decode("utf-8", "replace").rstrip()
