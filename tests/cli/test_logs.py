"""`conduit logs NAME -f` on real log files: a `conduit` process follows the serving revision's
log while the test appends to it, moves on to the next revision's log when traffic moves there,
and stops with exit code 0 on Ctrl-C. (The store is written directly: no server is needed to
append to a log.)"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conduit.cli.main import main
from conduit.store import Store

NAME = "followed"
WAIT_S = 60  # a bound on a hung follower, never a measure of speed


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def serve_revision(home: Path, text: str) -> Path:
    """A new revision of NAME with a log holding `text`, made the serving one."""
    store = Store(home)
    store.ensure_deployment(NAME)
    revision = store.add_revision(NAME, f"{NAME}:v{len(store.revisions(NAME)) + 1}", "0" * 64)
    log = home / "logs" / f"{NAME}-r{revision.revision}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(text)
    store.update_revision(NAME, revision.revision, log_path=str(log))
    store.promote(NAME, revision.revision)  # the one it replaces is archived
    return log


def append(log: Path, text: str) -> None:
    with open(log, "a") as handle:
        handle.write(text)


class Follower:
    """`conduit logs NAME -f` in a process of its own; its stdout read line by line."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "CONDUIT_HOME": str(home)}
        command = [sys.executable, "-m", "conduit.cli.main", "logs", NAME, "-f", *args]
        # SIGINT back to its default: a test run in the background (nohup, `&`) passes it on ignored,
        # and then Python installs no KeyboardInterrupt for the Ctrl-C the tests send.
        restore_ctrl_c = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=restore_ctrl_c
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self) -> str:
        return self.lines.get(timeout=WAIT_S)

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=WAIT_S)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def follower(home: Path):
    started: list[Follower] = []
    yield lambda *args: started.append(Follower(home, *args)) or started[-1]
    for each in started:
        each.close()


def test_follow_prints_the_tail_then_each_appended_line_and_ctrl_c_exits_0(home, follower):
    log = serve_revision(home, "one\ntwo\nthree\n")
    following = follower("-n", "2")
    assert [following.next_line(), following.next_line()] == ["two", "three"]
    append(log, "four\n")
    assert following.next_line() == "four"
    append(log, "half a li")
    append(log, "ne, then the rest\n")
    assert following.next_line() == "half a line, then the rest"
    assert following.interrupt() == 0
    assert following.process.stderr.read() == ""


def test_follow_moves_on_to_the_next_revision_after_a_redeploy(home, follower):
    first = serve_revision(home, "revision 1 serving\n")
    following = follower()
    assert following.next_line() == "revision 1 serving"
    append(first, "revision 1 still serving\n")
    assert following.next_line() == "revision 1 still serving"
    second = serve_revision(home, "revision 2 starting\nrevision 2 ready\n")
    assert following.next_line() == f"==> {second} <=="
    assert [following.next_line(), following.next_line()] == ["revision 2 starting", "revision 2 ready"]
    append(second, "revision 2 answered\n")
    assert following.next_line() == "revision 2 answered"
    assert following.interrupt() == 0


def test_follow_of_a_given_revision_stays_on_it(home, follower):
    first = serve_revision(home, "r1\n")
    following = follower("--revision", "1")
    assert following.next_line() == "r1"
    serve_revision(home, "r2\n")
    append(first, "r1 again\n")
    assert following.next_line() == "r1 again"
    assert following.interrupt() == 0


def test_follow_ends_when_the_deployment_is_deleted(home):
    serve_revision(home, "last words\n")
    following = Follower(home)
    try:
        assert following.next_line() == "last words"
        assert main(["delete", NAME]) == 0
        assert following.process.wait(timeout=WAIT_S) == 0
        assert "the deployment was deleted" in following.process.stderr.read()
    finally:
        following.close()


def test_without_follow_the_tail_is_printed_once(home, capsys):
    serve_revision(home, "".join(f"line {n}\n" for n in range(1, 8)))
    assert main(["logs", NAME, "-n", "3"]) == 0
    assert capsys.readouterr().out == "line 5\nline 6\nline 7\n"
