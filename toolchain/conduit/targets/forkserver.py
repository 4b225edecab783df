"""A revision's BentoML workers, forked from its supervisor with their imports already done.

A fresh BentoML worker spends most of its start-up importing: BentoML's server app (0.5 s here)
and the model's framework (scikit-learn 0.7 s, torch 1.4 s, transformers' pipelines 2.4 s), then
loads the model and binds (0.15-0.3 s for iris). The supervisor has imported most of BentoML
already to run `bentoml serve` in a fork of itself; as a fork server it imports the rest of what
a worker needs while the arbiter starts, and each worker becomes a fork of it. This is what
gunicorn's `preload_app` and Python's `forkserver` start method do.

BentoML's arbiter still starts, watches, restarts and stops every worker, with the same
arguments: the arbiter forked by the supervisor runs `conduit.targets.worker_shim` as its
`python`, which hands its arguments, environment and descriptors over a Unix socket (in a private
folder) and stands in for the forked worker. The worker then runs BentoML's own worker module.

A worker is forked only when that is the same as starting one fresh; otherwise the stand-in
starts the ordinary worker and the fork server says why once in the revision log:
- it asks for what the supervisor preloaded (`python -m MODULE ...`);
- its environment equals the one the modules were imported under, except for what BentoML sets
  per worker and reads only at run time (a library that reads, say, OMP_NUM_THREADS when it
  loads would otherwise run with the wrong value);
- the supervisor runs a single thread (only the forking thread survives a fork), and has not
  imported prometheus_client (which picks its multi-process mode when imported).
"""
from __future__ import annotations

import errno
import fcntl
import importlib
import json
import os
import runpy
import selectors
import shlex
import signal
import socket
import sys
import tempfile
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, NoReturn, Optional

from conduit import startup
from conduit.targets import worker_shim

SOCKET_ENV = worker_shim.SOCKET_ENV
ENABLED_ENV = "CONDUIT_FORKSERVER"  # 0: every worker starts as a fresh `python -m ...`
# What a BentoML worker imports beyond `bentoml serve` (0.2 s here), before its service and model.
WORKER_MODULES = (
    "_bentoml_impl.worker.service",
    "_bentoml_impl.server.app",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
)
# Set by BentoML's arbiter (its CLI, or per worker) and read at run time, never as a library loads.
RUN_TIME_ENV = frozenset(
    {"BENTOML_RUNNER_MAP", "BENTOML_VERBOSITY", "PROMETHEUS_MULTIPROC_DIR", "CUDA_VISIBLE_DEVICES", SOCKET_ENV}
)
# Decides its multi-process mode from PROMETHEUS_MULTIPROC_DIR when imported.
IMPORT_TIME_ENV_READERS = ("prometheus_client",)
MAX_FDS = 253  # the most one message can carry (SCM_MAX_FD)


def forget_conduit() -> None:
    """Drop this process's conduit modules, so the served Bento imports the conduit code it was
    built with (its own copy, next to its service.py), as a fresh process would."""
    for name in [name for name in sys.modules if name == "conduit" or name.startswith("conduit.")]:
        del sys.modules[name]


def exit_code(done: SystemExit) -> int:
    return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)


def run_child(body: Callable[[], None]) -> NoReturn:
    """Run `body` in a forked child and exit with its code: whatever happens, the child never
    returns into the process it was forked from."""
    code = 1
    try:
        body()
        code = 0
    except SystemExit as done:
        code = exit_code(done)
    except BaseException:  # noqa: BLE001 - whatever it was, the child must reach os._exit below
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reseed_numpy() -> None:
    """NumPy seeds its global generator from the OS when imported; forked workers would all share
    the supervisor's sequence instead (Python's `random` reseeds itself after a fork)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def place_fds(received: list[int], targets: list[int]) -> None:
    """Give this process descriptor `targets[i]` open on `received[i]`, as an exec'd worker would
    have inherited it."""
    above = max([*received, *targets, 2]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, above) for fd in received]
    for fd in received:
        os.close(fd)
    for fd, target in zip(moved, targets):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def shim_command(folder: Path) -> Path:
    """An executable `python` for the arbiter: the stand-in script, started without site
    packages, from a folder holding nothing else that it could import by mistake."""
    script = folder / "worker_shim.py"
    script.write_text(Path(worker_shim.__file__).read_text(encoding="utf-8"), encoding="utf-8")
    command = folder / "python"
    command.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S {shlex.quote(str(script))} "$@"\n')
    command.chmod(0o700)
    return command


class ForkServer:
    """Lives in the supervisor: `preload()` once the arbiter is forked, then `serve(timeout)`
    wherever the supervisor would sleep. `modules`: the framework's (`conduit.targets.preload`)."""

    def __init__(self, say: Callable[[str], None], modules: Iterable[str] = ()) -> None:
        self.say = say
        self.modules = tuple(modules)
        self.folder = Path(tempfile.mkdtemp(prefix="conduit-fork-"))  # 0700: only this user gets in
        self.address = str(self.folder / "socket")
        self.command = shim_command(self.folder)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.address)
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.wakeup, self.wakeup_writer = socket.socketpair()
        for end in (self.wakeup, self.wakeup_writer):
            end.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self.wakeup, selectors.EVENT_READ, self._drain_wakeup)
        self.workers: dict[int, socket.socket] = {}  # pid -> the connection to its stand-in
        self.env: Optional[dict[str, str]] = None  # os.environ when the modules were imported
        self.set_by_imports: dict[str, str] = {}  # what importing them added to it (sklearn's KMP_*)
        self.declined: set[str] = set()
        self.unsafe: Optional[str] = None  # why forking a worker from this process is not safe

    @staticmethod
    def enabled() -> bool:
        """On unless turned off; Linux only (threads and descriptors are read from /proc)."""
        return os.environ.get(ENABLED_ENV) != "0" and sys.platform.startswith("linux")

    @property
    def preloaded(self) -> bool:
        return self.env is not None

    # In the supervisor

    def preload(self) -> None:
        """Import what a worker will: BentoML's worker side, then the model's framework. A module
        that does not import is left to the worker, which says why if it needs it. From now on a
        child's exit wakes `serve`, so a stand-in hears of its worker at once."""
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wakeup_writer.fileno(), warn_on_full_buffer=False)
        startup.begin()
        self.env = dict(os.environ)
        for name in (*WORKER_MODULES, *self.modules):
            try:
                importlib.import_module(name)
            except Exception as error:  # noqa: BLE001 - anything a module raises while importing
                self.say(f"preloading {name} failed ({type(error).__name__}: {error}); workers will import it themselves")
            if thread_count() > 1:  # stop here: no worker will be forked, so no more is worth importing
                self.unsafe = f"importing {name} started a thread, and threads do not survive a fork"
                break
        forget_conduit()  # the workers import the Bento's own copy
        self.set_by_imports = {k: v for k, v in os.environ.items() if self.env.get(k) != v}
        # Frozen, what the workers share is never touched by a collection, so its pages stay shared.
        startup.settle()

    def serve(self, timeout: float) -> None:
        for key, _events in self.selector.select(timeout):
            key.data(key.fileobj)
        self._reap()

    def close(self) -> None:
        self._let_go()
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()

    def prepare_arbiter(self) -> None:
        """In the arbiter, a fork of the supervisor: its workers' `python` is the stand-in, and
        the stand-in finds this server through the environment the arbiter passes on."""
        self._let_go()
        os.environ[SOCKET_ENV] = self.address
        sys.executable = str(self.command)

    def _let_go(self) -> None:
        """Stop serving in this process: on close, and in any child forked from the supervisor."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for connection in self.workers.values():
            connection.close()
        self.workers.clear()
        self.selector.close()
        for end in (self.listener, self.wakeup, self.wakeup_writer):
            end.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:  # every stand-in waiting: BentoML starts all workers at once
            try:
                connection, _ = listener.accept()
            except BlockingIOError:
                return
            try:
                self._answer(connection)
            except (OSError, ValueError, KeyError) as error:  # the stand-in then starts the worker itself
                self.say(f"a worker request failed ({type(error).__name__}: {error})")
                connection.close()

    def _answer(self, connection: socket.socket) -> None:
        connection.setblocking(True)
        message, fds, _flags, _address = socket.recv_fds(connection, worker_shim.MESSAGE_BYTES, MAX_FDS)
        request = json.loads(message)
        reason = self.why_not_fork(request)
        if not reason and len(fds) != len(request["fds"]):
            reason = f"{len(request['fds'])} descriptors sent, {len(fds)} received"
        if reason:
            for fd in fds:
                os.close(fd)
            self._decline(connection, reason)
            return
        pid = self._fork_worker(request, fds, connection)
        connection.sendall(json.dumps({"pid": pid}).encode())
        self.workers[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ, lambda _c, pid=pid: self._stand_in_gone(pid))

    def why_not_fork(self, request: dict) -> Optional[str]:
        return self.why_not_forkable() or self.why_not_this_worker(request)

    def why_not_forkable(self) -> Optional[str]:
        """What keeps this process from being forked into a worker at all."""
        if not self.preloaded:
            return "nothing was preloaded"
        if self.unsafe:
            return self.unsafe
        if thread_count() > 1:
            return "the supervisor runs more than one thread, and threads do not survive a fork"
        for module in IMPORT_TIME_ENV_READERS:
            if module in sys.modules:
                return f"{module} was imported before the worker's environment was known"
        return None

    def why_not_this_worker(self, request: dict) -> Optional[str]:
        """What makes this worker differ from a fork of the preloaded process."""
        argv = request["argv"]
        if argv[:2] != ["-m", WORKER_MODULES[0]]:
            return f"not a BentoML worker command: {' '.join(argv[:2])}"
        preloaded_env, worker_env = self.env or {}, request["env"]
        keys = (set(preloaded_env) | set(worker_env)) - RUN_TIME_ENV
        differing = sorted(key for key in keys if preloaded_env.get(key) != worker_env.get(key))
        if differing:
            return f"the worker's environment differs from the preloaded one in {', '.join(differing)}"
        return None

    def _decline(self, connection: socket.socket, reason: str) -> None:
        if reason not in self.declined:
            self.declined.add(reason)
            self.say(f"starting workers without the fork server: {reason}")
        connection.sendall(json.dumps({"declined": reason}).encode())
        connection.close()

    def _fork_worker(self, request: dict, fds: list[int], connection: socket.socket) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            for fd in fds:
                os.close(fd)
            return pid
        run_child(lambda: self._become_worker(request, fds, connection))

    def _become_worker(self, request: dict, fds: list[int], connection: socket.socket) -> None:
        """In the forked child: become the process the stand-in would have exec'd."""
        os.setsid()  # as BentoML's arbiter starts every worker
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)  # the supervisor's handlers
        connection.close()  # not among `workers` yet: the parent adds it once it has the pid
        self._let_go()
        place_fds(fds, request["fds"])
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # `python -m` puts its working folder first (here: the supervisor's)
        reseed_numpy()
        os.environ.clear()
        os.environ.update({k: v for k, v in request["env"].items() if k != SOCKET_ENV})
        os.environ.update(self.set_by_imports)  # as the same imports in a fresh worker would
        forget_conduit()  # in case the supervisor imported any of its own since the preload
        module, *args = request["argv"][1:]
        sys.argv = [module, *args]
        sys.modules.pop(module, None)  # preloaded; it runs afresh as __main__, as `python -m` would
        runpy.run_module(module, run_name="__main__", alter_sys=True)

    def _stand_in_gone(self, pid: int) -> None:
        """The stand-in closed its end (it was killed): its worker must not run on unwatched."""
        connection = self.workers.get(pid)
        if connection is not None and not connection.recv(1):
            self.selector.unregister(connection)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _drain_wakeup(self, wakeup: socket.socket) -> None:
        try:
            while wakeup.recv(512):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (the supervisor's clean-up): killed
                done, status = pid, signal.SIGKILL
            if done:
                self._report_exit(pid, os.waitstatus_to_exitcode(status))

    def _report_exit(self, pid: int, code: int) -> None:
        connection = self.workers.pop(pid)
        try:
            self.selector.unregister(connection)
        except KeyError:
            pass
        try:
            connection.sendall(json.dumps({"exit": code}).encode())
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                raise
        connection.close()

