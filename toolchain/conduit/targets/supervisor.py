"""Keeps one served revision running: `python -m conduit.targets.supervisor --ready-url URL -- CMD...`.

The supervisor is what the store records as a revision's pid. It runs CMD (`bentoml serve ...`)
in its own process group, with output going to the supervisor's stdout (the revision's log).

- A server that became ready and later dies is restarted (at most MAX_RESTARTS in RESTART_WINDOW_S,
  with a growing pause), so one crash does not take an endpoint down.
- A server that dies, or loses a worker, before it was ever ready is stopped and not restarted:
  the revision failed, and the supervisor exits so `apply` sees it at once and reports the log.
  (BentoML's arbiter would respawn a worker that fails at start-up forever, burning CPU until
  `apply` times out.) After ready, the arbiter respawns crashed workers itself.
- SIGTERM stops the server gracefully (BentoML's arbiter stops its workers), then anything left in
  the process group is killed, so no worker outlives its revision.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Optional

import psutil  # a BentoML dependency

MAX_RESTARTS = 5
RESTART_WINDOW_S = 600.0
STOP_GRACE_S = 20.0
READY_POLL_S = 0.2


def say(message: str) -> None:
    print(f"[conduit supervisor {time.strftime('%H:%M:%S')}] {message}", flush=True)


def is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def kill_leftovers() -> None:
    """Kill every process left in this process group except the supervisor itself (workers
    orphaned by a crashed arbiter would otherwise keep the port)."""
    me = os.getpid()
    group = os.getpgid(0)
    for process in psutil.process_iter(["pid"]):
        try:
            if process.pid != me and os.getpgid(process.pid) == group:
                process.kill()
        except (ProcessLookupError, psutil.Error):
            continue


class WorkerWatch:
    """Notices when a worker process of the server (a child of its arbiter) goes away."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.seen: set[int] = set()

    def one_exited(self) -> bool:
        try:
            current = {p.pid for p in psutil.Process(self.server_pid).children() if p.status() != psutil.STATUS_ZOMBIE}
        except psutil.Error:
            return False
        gone = bool(self.seen - current)
        self.seen |= current
        return gone


class Supervisor:
    def __init__(self, command: list[str], ready_url: str) -> None:
        self.command = command
        self.ready_url = ready_url
        self.child: Optional[subprocess.Popen] = None
        self.stopping = False
        self.stop_requested_at = 0.0
        self.restarts: list[float] = []

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True
        self.stop_requested_at = time.monotonic()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run_once(self) -> tuple[int, bool]:
        """Start the server and wait for it to exit; returns (exit code, whether it got ready)."""
        self.child = subprocess.Popen(self.command, stdout=sys.stdout, stderr=sys.stderr)
        ready = False
        workers = WorkerWatch(self.child.pid)
        while self.child.poll() is None:
            if self.stopping and time.monotonic() - self.stop_requested_at > STOP_GRACE_S:
                say(f"server did not stop within {STOP_GRACE_S:.0f}s; killing it")
                kill_leftovers()
            if not ready and not self.stopping and workers.one_exited():
                say("a worker exited before the server was ready; stopping the server")
                self.child.send_signal(signal.SIGTERM)
                try:
                    self.child.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    kill_leftovers()
                return 1, False
            if not ready and is_ready(self.ready_url):
                ready = True
                say("server ready")
            time.sleep(READY_POLL_S if not ready else 1.0)
        return self.child.returncode, ready

    def may_restart(self) -> bool:
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S]
        return len(self.restarts) < MAX_RESTARTS

    def run(self) -> int:
        while True:
            code, was_ready = self.run_once()
            if self.stopping:
                kill_leftovers()
                say("stopped")
                return 0
            kill_leftovers()  # workers of a crashed server would keep its port
            if not was_ready:
                say(f"server exited with code {code} before it was ready; not restarting")
                return code or 1
            if not self.may_restart():
                say(f"server exited with code {code}; {MAX_RESTARTS} restarts in {RESTART_WINDOW_S:.0f}s, giving up")
                return code or 1
            self.restarts.append(time.monotonic())
            pause = 2 ** (len(self.restarts) - 1)
            say(f"server exited with code {code}; restarting in {pause}s ({len(self.restarts)}/{MAX_RESTARTS})")
            time.sleep(pause)
            if self.stopping:
                return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conduit.targets.supervisor")
    parser.add_argument("--ready-url", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    supervisor = Supervisor(command, args.ready_url)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    say(f"pid {os.getpid()} starting: {' '.join(command)}")
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
