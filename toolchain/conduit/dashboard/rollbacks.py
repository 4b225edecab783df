"""Rollbacks started from the page: `conduit rollback NAME --to N` in a child process, one at a
time per deployment, its output kept for the page to show.

A child, not a thread: the CLI holds Ctrl-C and SIGTERM off while it switches revisions (which
works in a main thread only), and a rollback under way finishes even if the dashboard stops.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Optional

from conduit.errors import UsageError


@dataclass
class Rollback:
    to: int
    lines: list[str] = field(default_factory=list)
    returncode: Optional[int] = None

    @property
    def done(self) -> bool:
        return self.returncode is not None

    def view(self) -> dict:
        return {"to": self.to, "lines": list(self.lines), "done": self.done, "ok": self.returncode == 0}


def rollback_command(name: str, to: int) -> list[str]:
    return [sys.executable, "-m", "conduit.cli.main", "rollback", name, "--to", str(to)]


class Rollbacks:
    def __init__(self) -> None:
        self._jobs: dict[str, Rollback] = {}
        self._lock = threading.Lock()

    def start(self, name: str, to: int) -> Rollback:
        with self._lock:
            running = self._jobs.get(name)
            if running is not None and not running.done:
                raise UsageError(f"{name} is already rolling back to revision {running.to}; wait for it to finish")
            job = self._jobs[name] = Rollback(to)
        process = subprocess.Popen(
            rollback_command(name, to), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=follow, args=(process, job), daemon=True, name=f"rollback-{name}").start()
        return job

    def latest(self, name: str) -> Optional[Rollback]:
        return self._jobs.get(name)


def follow(process: subprocess.Popen, job: Rollback) -> None:
    """Keep the child's output lines, then its exit code."""
    assert process.stdout is not None
    for line in process.stdout:
        job.lines.append(line.rstrip())
    job.returncode = process.wait()
