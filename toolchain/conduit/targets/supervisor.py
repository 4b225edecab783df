"""Keeps one served revision running: `python -m conduit.targets.supervisor --ready-url URL -- CMD...`.

The supervisor is what the store records as a revision's pid. It runs CMD (`bentoml serve ...`)
in its own process group, with output going to the supervisor's stdout (the revision's log).

- A server that became ready and later dies is restarted (at most MAX_RESTARTS in RESTART_WINDOW_S,
  with a growing pause), so one crash does not take an endpoint down.
- A server that dies, or loses a worker, before it was ever ready is stopped and not restarted:
  the revision failed, and the supervisor exits so `apply` sees it at once and reports the log.
  (BentoML's arbiter would respawn a worker that fails at start-up forever, burning CPU until
  `apply` times out.) After ready, the arbiter respawns crashed workers itself.
- SIGTERM stops the server gracefully (BentoML's arbiter stops its workers), then anything left
  among its descendants or in its process group is killed, so no worker outlives its revision.
  BentoML starts each worker in a session of its own; the supervisor is a child subreaper, so the
  workers of an arbiter that crashed are re-parented to it and still found. (A supervisor killed
  outright cannot clean up: `processes.stop_revision` finds what it left by the revision's log.)
- Nothing of the server listens but its HTTP port: BentoML's arbiter takes its commands on Unix
  sockets in a private folder of the supervisor, and counts the revision's Prometheus metrics in
  the revision's own folder ($CONDUIT_METRICS_DIR, removed when the supervisor ends); see
  `conduit.serving.process.serve_privately`. (Only the warm start does this: a supervisor whose
  BentoML CLI did not import runs a plain `bentoml serve`.)

Warm start: when CMD is `python -m bentoml serve ...`, the supervisor imports BentoML's CLI once
and runs `bentoml serve` in a fork of itself, so neither the first start nor a restart pays that
import again (0.55 s of the 2.3 s a bare `bentoml serve` of iris takes to be ready here).
Its workers are forks of the supervisor too (`conduit.targets.forkserver`): while the arbiter
starts, the supervisor imports what a worker imports (BentoML's server app, the model's framework),
and each worker BentoML's arbiter starts becomes a fork of it, so it only loads the model and binds.
With `--standby`, the supervisor starts before its revision exists: `conduit apply` launches it
first thing, it imports BentoML on the other core while apply validates and builds, then reads its
order (one JSON line on stdin: ready URL, command, log path, environment) and serves. An apply
that needs no new revision stops it (end of input alone also ends it quietly).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import psutil  # a BentoML dependency

from conduit import paths, startup
from conduit.serving.process import METRICS_DIR_ENV, bento_folder, serve_privately
from conduit.targets.forkserver import ForkServer, forget_conduit, run_child
from conduit.targets.preload import worker_preparation
from conduit.targets.processes import answers_ready, kill_tree

# `bentoml serve` of a conduit Bento imports these after parsing its command line (0.1 s here).
# (conduit's own modules are dropped again before serving: see `forget_conduit`.)
SERVE_MODULES = (
    "_bentoml_impl.server.serving",
    "_bentoml_impl.loader",
    "bentoml._internal.utils.circus",
    "bentoml.serving",
    "circus.arbiter",
    "circus.sockets",
    "conduit.serving.service",
)
MAX_RESTARTS = 5
RESTART_WINDOW_S = 600.0
STOP_GRACE_S = 20.0
READY_POLL_S = 0.2
# Short: until a worker listens, a check waits this long, and meanwhile the fork server waits too.
READY_CHECK_TIMEOUT_S = 0.5


def say(message: str) -> None:
    try:
        print(f"[conduit supervisor {time.strftime('%H:%M:%S')}] {message}", flush=True)
    except OSError:  # a full disk: the log misses the line (kept buffered), the server runs on
        pass


def become_subreaper() -> bool:
    """Have orphaned descendants re-parented to this process (Linux `PR_SET_CHILD_SUBREAPER`).
    BentoML's arbiter starts each worker in a session of its own, so a worker outlives an arbiter
    that crashed; as the subreaper, the supervisor still finds it among its descendants."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # 36: PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def kill_leftovers() -> None:
    """Kill whatever the supervisor started that is still there, and reap it (workers orphaned by
    a crashed arbiter would otherwise keep the port and memory)."""
    psutil.wait_procs(kill_tree(os.getpid(), keep_root=True), timeout=5)


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


class ForkedServer:
    """The part of `subprocess.Popen` the supervisor uses, for a forked child."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)



class SubprocessLauncher:
    """Starts the server command as a subprocess writing to the supervisor's output."""

    forkserver: Optional[ForkServer] = None  # only a BentoMLLauncher's workers can be forked

    def start(self, command: list[str]) -> Any:
        return subprocess.Popen(command, stdout=sys.stdout, stderr=sys.stderr)

    def close(self) -> None:
        pass


class BentoMLLauncher(SubprocessLauncher):
    """Runs `python -m bentoml serve ...` as a fork of this process, with BentoML's CLI imported
    once beforehand; any other command runs as a plain subprocess."""

    def __init__(self) -> None:
        from bentoml_cli.cli import cli  # the `bentoml` command itself

        self.bentoml_cli = cli
        for module in SERVE_MODULES:  # what `serve` would import next, imported before the fork
            importlib.import_module(module)
        self.sockets: Optional[Path] = None  # the arbiter's control sockets' folder, once it starts

    @staticmethod
    def bentoml_args(command: list[str]) -> Optional[list[str]]:
        if command[:3] == [sys.executable, "-m", "bentoml"]:
            return command[3:]
        return None

    def start(self, command: list[str]) -> Any:
        args = self.bentoml_args(command)
        if args is None:
            return super().start(command)
        if self.sockets is None:  # made now: a standby stopped before its order leaves nothing behind
            self.sockets = Path(tempfile.mkdtemp(prefix="conduit-arbiter-"))  # 0700: only this user gets in
        sockets = self.sockets
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return ForkedServer(pid)
        run_child(lambda: self._serve_in_child(args, sockets))

    def _serve_in_child(self, args: list[str], sockets: Path) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)  # BentoML's arbiter installs its own
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        if self.forkserver is not None:
            self.forkserver.prepare_arbiter()
        serve_privately(sockets)
        forget_conduit()
        self.bentoml_cli.main(args=args, prog_name="bentoml")

    def close(self) -> None:
        if self.sockets is not None:
            shutil.rmtree(self.sockets, ignore_errors=True)


class Supervisor:
    def __init__(self, command: list[str], ready_url: str, launcher: Optional[SubprocessLauncher] = None) -> None:
        self.command = command
        self.ready_url = ready_url
        self.launcher = launcher or SubprocessLauncher()
        self.forkserver = self.launcher.forkserver
        self.child: Any = None  # the server's process while one runs (a Popen, or BentoML's forked child)
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
        self.child = self.launcher.start(self.command)
        if self.forkserver is not None and not self.forkserver.preloaded:
            self.forkserver.preload()  # while the arbiter starts on the other core
        ready = False
        workers = WorkerWatch(self.child.pid)
        while self.child.poll() is None:
            if self.forkserver is not None:
                self.forkserver.serve(0)  # waiting stand-ins first: the ready check below may wait
            if self.stopping and time.monotonic() - self.stop_requested_at > STOP_GRACE_S:
                say(f"server did not stop within {STOP_GRACE_S:.0f}s; killing it")
                kill_leftovers()
            if not ready and not self.stopping and workers.one_exited():
                say("a worker exited before the server was ready; stopping the server")
                self.child.send_signal(signal.SIGTERM)
                if not self.wait_for_exit(STOP_GRACE_S):
                    kill_leftovers()
                return 1, False
            if not ready and answers_ready(self.ready_url, READY_CHECK_TIMEOUT_S):
                ready = True
                say("server ready")
            self.pause(READY_POLL_S if not ready else 1.0)
        return self.child.returncode, ready

    def wait_for_exit(self, timeout: float) -> bool:
        """Whether the server exited within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.child.poll() is None:
            if time.monotonic() > deadline:
                return False
            self.pause(0.05)
        return True

    def pause(self, seconds: float) -> None:
        """Wait, serving the fork server's workers meanwhile if there is one."""
        if self.forkserver is None:
            time.sleep(seconds)
        else:
            self.forkserver.serve(seconds)

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
            self.pause(pause)
            if self.stopping:
                return 0


def read_order(stream: Any) -> Optional[dict]:
    """The standby's order from `conduit apply`, or None when apply closed the pipe without one."""
    line = stream.readline()
    return json.loads(line) if line.strip() else None


def take_order(order: dict, standby_log: Path) -> tuple[list[str], str]:
    """Write to the revision's log from now on (with what the standby logged so far), take the
    revision's environment, and return its command and ready URL."""
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if standby_log.is_file():
        os.write(log, standby_log.read_bytes())
        standby_log.unlink()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.update(order["env"])
    return order["command"], order["ready_url"]


def warm_launcher() -> SubprocessLauncher:
    try:
        return BentoMLLauncher()
    except Exception as error:  # noqa: BLE001 - no warm start is no reason not to serve: `bentoml serve` runs as a subprocess
        say(f"BentoML's CLI did not import ({type(error).__name__}: {error}); starting `bentoml serve` as a subprocess")
        return SubprocessLauncher()


def start_fork_server(launcher: SubprocessLauncher, command: list[str]) -> None:
    """Give a warm launcher a fork server for `bentoml serve TAG`'s workers. The math-thread
    environment that the Bento's service.py would give each worker is set here already, so the
    framework is imported under the same settings."""
    args = BentoMLLauncher.bentoml_args(command)
    if not isinstance(launcher, BentoMLLauncher) or not ForkServer.enabled() or not args or args[0] != "serve":
        return
    modules, thread_env = worker_preparation(bento_folder(args[1], os.environ.get("BENTOML_HOME")) / "src")
    for variable, value in thread_env.items():
        os.environ.setdefault(variable, value)  # as service.py does: a value set on purpose stays
    threads = {os.environ[variable] for variable in thread_env}
    if threads - {"1"}:
        # NumPy's OpenBLAS starts its threads when it loads (BentoML's server app imports NumPy),
        # and threads do not survive a fork.
        say(f"workers start without the fork server: their math libraries run {'/'.join(sorted(threads))} threads each")
        return
    launcher.forkserver = ForkServer(say, modules)


def remove_metrics() -> None:
    """The revision's Prometheus files end with it: a redeploy is a new revision with its own."""
    folder = os.environ.get(METRICS_DIR_ENV)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    startup.begin()
    paths.keep_private()  # its logs, metrics and the server it runs write private state
    parser = argparse.ArgumentParser(prog="conduit.targets.supervisor")
    parser.add_argument("--ready-url")
    parser.add_argument("--standby", metavar="LOG", type=Path, help="import BentoML, then read the order from stdin; LOG is where output goes until then")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    ready_url = args.ready_url
    launcher = warm_launcher() if args.standby or BentoMLLauncher.bentoml_args(command) else SubprocessLauncher()
    startup.settle()
    if args.standby:
        order = read_order(sys.stdin)
        if order is None:  # apply ended without a new revision: nothing to serve, nothing to keep
            args.standby.unlink(missing_ok=True)
            return 0
        command, ready_url = take_order(order, args.standby)
    if not command or not ready_url:
        parser.error("a command and --ready-url are required (or --standby and an order on stdin)")
    become_subreaper()
    start_fork_server(launcher, command)
    supervisor = Supervisor(command, ready_url, launcher)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    say(f"pid {os.getpid()} starting: {' '.join(command)}")
    try:
        return supervisor.run()
    finally:
        if supervisor.forkserver is not None:
            supervisor.forkserver.close()
        launcher.close()
        remove_metrics()


if __name__ == "__main__":
    sys.exit(main())
