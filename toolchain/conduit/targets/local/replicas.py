"""Replicas: the processes that serve one revision's built Bento, started, watched and stopped
from the gateway's asyncio loop.

A replica is one process group on a listening socket of its own (127.0.0.1, a free port) running
BentoML's own worker code (`bentoml_serving.WorkerLayout`: the Bento's `workers`, all on that
socket, in the Bento's `src/`). Its leader's pid is its pid and its process group.

    launcher = Launcher(say)                  # say: a line for the gateway's log
    await launcher.prepare(spec)              # start its zygote now, so the first start forks
    started = await launcher.start(spec)      # returns once started, not ready: poll answers_ready(port)
    why = await launcher.wait_exit(started)   # "exited with code 1", "killed by signal 9 (SIGKILL)",
                                              # "killed: over its memory limit of 2.0 GB"
    await launcher.stop(started)              # TERM the group (workers finish what they hold), KILL after grace
    launcher.adopt(pid, port, create_time)    # a replica a previous gateway started, or None
    launcher.release(name, revision)          # that revision no longer serves: its zygote may go
    await launcher.close()                    # zygotes stop; replicas keep running

Warm start: one zygote (`zygote.py`) per (interpreter, preloaded modules, math-thread
environment) imports BentoML's worker side and the model's framework once, and each replica is a
fork of it, so it only loads its model and binds. Cold start, where no zygote can serve
(CONDUIT_WARM_START=0, a zygote that crashed or is not safe to fork; the gateway's log says why):
the same leader in a fresh interpreter, whose workers import everything themselves (a `bentoml
serve` without its arbiter: conduit's gateway is the one watching replicas, and nothing listens
but the replica's HTTP port). Either way the replica gets: the spec's env on top of the serving
environment (`bentoml_serving.serve_env`, never the plain API key), its revision's Prometheus
folder (CONDUIT_METRICS_DIR, shared by its replicas: files are per pid, so any replica's /metrics
counts the revision), its memory limit in a cgroup where the OS allows (`cgroup.py`; else it runs
unlimited and the gateway's log says why once), and its output in `spec.log_path`. (A warm
replica's /proc/<pid>/environ shows the zygote's start-up environment, which Linux keeps there;
the environment it runs with is the order's.)
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psutil  # a BentoML dependency, present wherever conduit serves

from conduit.targets.local import bentoml_serving, cgroup
from conduit.targets.local.bentoml_serving import API_KEY_SHA256_ENV, METRICS_DIR_ENV, PLAIN_KEY_ENV, WorkerLayout
from conduit.targets.local.preload import worker_preparation

ZYGOTE_SCRIPT = Path(__file__).with_name("zygote.py")
WARM_START_ENV = "CONDUIT_WARM_START"  # 0: every replica starts cold
MAX_MESSAGE = 1 << 20
GONE_POLL_S = 0.5
SAME_PROCESS_S = 0.05  # create times read twice by psutil differ by rounding, never by this much


@dataclass(frozen=True)
class ReplicaSpec:
    name: str
    revision: int
    replica: int  # replica id within the revision (1, 2, ...)
    tag: str  # the built Bento, name:version
    python: str  # interpreter of its environment
    env: dict[str, str]  # extra environment: key hash, metrics dir, prediction log...
    log_path: Path
    memory_bytes: Optional[int] = None  # enforced with a cgroup where possible

    @property
    def label(self) -> str:
        return f"{self.name}-r{self.revision}-{self.replica}"


@dataclass(frozen=True)
class Started:
    pid: int  # the replica's leader: also its process group
    port: int
    warm: bool  # forked from a zygote
    create_time: float  # psutil's, so that a recycled pid is never taken for the replica


class ZygoteUnavailable(Exception):
    """Why a replica cannot be forked from a zygote: it starts cold instead."""


def warm_start_enabled() -> bool:
    return os.environ.get(WARM_START_ENV) != "0"


async def answers_ready(port: int, timeout_s: float = 1.0) -> bool:
    """Whether the replica on `port` answers 200 to GET /readyz now."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout_s)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), timeout_s)
        return status_line.split()[1:2] == [b"200"]
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()


def exit_reason(code: Optional[int], group: Optional[cgroup.MemoryGroup]) -> str:
    """Why a replica ended, in words; `code` as subprocess gives it (None: not known)."""
    if group is not None and group.oom_killed():
        return f"killed: over its memory limit of {cgroup.describe_bytes(group.limit_bytes)}"
    if code is None:
        return "exited"
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exited with code {code}"


class Zygote:
    """The gateway's end of one zygote process (see zygote.py for its side)."""

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket) -> None:
        self.process = process
        self.control = control
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()  # -> why unsafe, or None
        self.unsafe: Optional[str] = None  # why it could fork nothing, once it said so (then it is gone)
        self.pending: dict[int, asyncio.Future] = {}  # order id -> (pid, exit code future)
        self.exits: dict[int, asyncio.Future] = {}  # replica pid -> its exit code; None once the zygote is gone
        self.ids = itertools.count(1)
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def spawn(cls, python: str, modules: list[str], env: dict[str, str], log_path: Path) -> Zygote:
        """Start a zygote preloading `modules` under `env`, its output to `log_path`."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        refuse = list(bentoml_serving.IMPORT_TIME_ENV_READERS)
        with theirs, open_log(log_path) as log:
            process = await asyncio.create_subprocess_exec(
                python, "-I", str(ZYGOTE_SCRIPT), "serve", str(theirs.fileno()), json.dumps(modules), json.dumps(refuse),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=[theirs.fileno()], env=env,
                start_new_session=True,  # a Ctrl-C meant for the gateway's terminal is not for it
            )
        ours.setblocking(False)
        return cls(process, ours)

    async def fork(self, order: dict, listen_fd: int) -> tuple[int, asyncio.Future]:
        """(the pid of the replica forked for `order`, its exit code to come); ZygoteUnavailable
        when it cannot."""
        unsafe = await asyncio.shield(self.ready)
        if unsafe:
            raise ZygoteUnavailable(unsafe)
        order_id = next(self.ids)
        answer = self.pending[order_id] = asyncio.get_running_loop().create_future()
        try:
            socket.send_fds(self.control, [json.dumps({**order, "id": order_id}).encode()], [listen_fd])
        except OSError as error:
            self.pending.pop(order_id)
            raise ZygoteUnavailable(f"the zygote took no order ({error})") from None
        return await answer

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            while message := await loop.sock_recv(self.control, MAX_MESSAGE):
                self._take(json.loads(message))
        gone = ZygoteUnavailable(f"the zygote exited ({self.process.returncode or 'see its log'})")
        for future in [self.ready, *self.pending.values()]:
            if not future.done():
                future.set_exception(gone)
        for future in self.exits.values():  # they run on; their exit codes are lost with the zygote
            future.set_result(None)
        self.pending.clear()
        self.exits.clear()

    def _take(self, message: dict) -> None:
        if "ready" in message:
            self.ready.set_result(message["unsafe"])
            if message["unsafe"]:  # it can fork nothing: let it go (torch's threads), but keep saying why
                self.unsafe = message["unsafe"]
                self.process.terminate()  # it forked nothing, so nothing of it is left
        elif "exit" in message:
            self.exits.pop(message["exit"]).set_result(message["code"])
        elif "pid" in message:
            exit_code = self.exits[message["pid"]] = asyncio.get_running_loop().create_future()
            self.pending.pop(message["id"]).set_result((message["pid"], exit_code))
        else:
            self.pending.pop(message["id"]).set_exception(ZygoteUnavailable(message["error"]))

    @property
    def alive(self) -> bool:
        """Serving orders, or gone because it could fork nothing (then not started again)."""
        return not self.reader.done() or self.unsafe is not None

    async def close(self) -> None:
        """Close its end: the zygote exits (its replicas keep running)."""
        self.control.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5.0)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()
        await asyncio.gather(self.reader, return_exceptions=True)


class Launcher:
    """Starts, watches and stops replicas; the gateway's only way to touch their processes."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.zygotes: dict[tuple, asyncio.Future] = {}  # -> a Zygote, once spawned (starts wait on one spawn)
        self.users: dict[tuple, set[tuple[str, int]]] = {}  # zygote -> revisions it serves
        self.exit_codes: dict[int, asyncio.Future] = {}  # replica pid -> its exit code, None if not known
        self.ended: dict[int, asyncio.Task] = {}  # replica pid -> why it ended, once it has
        self.said: set[str] = set()
        self.closing: list[asyncio.Future] = []
        cgroup.remove_empty_groups()  # of replicas that ended while no gateway watched them

    async def prepare(self, spec: ReplicaSpec) -> None:
        """Start the zygote `spec`'s replicas fork from, and return once it has imported what
        they need, so that a start forks at once (no replica yet)."""
        if warm_start_enabled():
            with contextlib.suppress(OSError, ValueError, ZygoteUnavailable):
                zygote = await asyncio.shield(self._zygote(spec, worker_preparation(bentoml_serving.worker_layout_of(spec.tag).src)))
                await asyncio.shield(zygote.ready)

    async def start(self, spec: ReplicaSpec) -> Started:
        """Start one replica of `spec`; returns once its processes run (not once it is ready)."""
        layout = bentoml_serving.worker_layout_of(spec.tag)
        modules, math_env = worker_preparation(layout.src)
        group = self._memory_group(spec)
        listener = socket.create_server(("127.0.0.1", 0), backlog=bentoml_serving.BACKLOG)
        try:
            port = listener.getsockname()[1]
            order = self._order(spec, layout, math_env, port, group)
            try:
                pid, warm = await self._start_warm(spec, (modules, math_env), order, listener.fileno()), True
            except ZygoteUnavailable as why:
                self._say_once(f"{spec.label} starts cold: {why}")
                pid, warm = await self._start_cold(spec, {**order, "note": f"[conduit] started cold: {why}"}, listener.fileno()), False
        finally:
            listener.close()  # the replica holds it now; no connection waits on a port nobody serves
        started = Started(pid, port, warm, create_time_of(pid))
        self._watch(started, group)
        return started

    async def wait_exit(self, started: Started) -> str:
        """Returns when the replica has exited: why, in words."""
        if started.pid not in self.ended:
            self._watch(started, cgroup.MemoryGroup.of_process(started.pid))
        return await asyncio.shield(self.ended[started.pid])

    async def stop(self, started: Started, grace_s: float = 10.0) -> None:
        """SIGTERM to the replica's group: its workers finish the requests they hold and exit.
        Whatever is left after `grace_s` is killed. Returns once it is gone."""
        signal_group(started, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait_exit(started), grace_s)
        except asyncio.TimeoutError:
            signal_group(started, signal.SIGKILL)
            await self.wait_exit(started)

    def adopt(self, pid: int, port: int, create_time: float) -> Optional[Started]:
        """The replica a previous gateway started as `pid`, if that process is still it."""
        try:
            command = psutil.Process(pid).cmdline()
        except psutil.Error:
            return None
        started = Started(pid, port, "serve" in command, create_time)
        if str(ZYGOTE_SCRIPT) not in command or not is_same_process(started):
            return None
        self._watch(started, cgroup.MemoryGroup.of_process(pid))
        return started

    def release(self, name: str, revision: int) -> None:
        """Revision `revision` of `name` no longer serves: a zygote no serving revision uses stops."""
        for key, users in list(self.users.items()):
            users.discard((name, revision))
            if not users:
                self._drop_zygote(key)

    async def close(self) -> None:
        """Stop the zygotes and stop watching; the replicas keep running, for a new gateway to adopt."""
        for key in list(self.zygotes):
            self._drop_zygote(key)
        await asyncio.gather(*self.closing, return_exceptions=True)
        for task in self.ended.values():
            task.cancel()

    # Starting

    def _zygote(self, spec: ReplicaSpec, preparation: tuple[list[str], dict[str, str]]) -> asyncio.Future:
        """The zygote for `spec`'s environment and preload (a future: it may be spawning), started
        anew if there is none or it is gone."""
        modules, math_env = preparation
        key = (spec.python, tuple(modules), tuple(sorted(math_env.items())))
        self.users.setdefault(key, set()).add((spec.name, spec.revision))
        spawning = self.zygotes.get(key)
        if spawning is None or (spawning.done() and (spawning.cancelled() or spawning.exception() or not spawning.result().alive)):
            self.say(f"starting a zygote for {spec.label}: {', '.join(modules) or 'no framework'} preloaded")
            env = {**base_env(), **math_env}
            imports = [*bentoml_serving.WORKER_IMPORTS, *modules]
            log = spec.log_path.parent / f"zygote-{hashlib.sha256(repr(key).encode()).hexdigest()[:12]}.log"
            spawning = self.zygotes[key] = asyncio.ensure_future(Zygote.spawn(spec.python, imports, env, log))
        return spawning

    async def _start_warm(self, spec: ReplicaSpec, preparation, order: dict, listen_fd: int) -> int:
        if not warm_start_enabled():
            raise ZygoteUnavailable(f"{WARM_START_ENV}=0")
        try:
            zygote = await asyncio.shield(self._zygote(spec, preparation))
        except OSError as error:
            raise ZygoteUnavailable(f"the zygote did not start ({error})") from None
        pid, exit_code = await zygote.fork(order, listen_fd)
        self.exit_codes[pid] = exit_code
        return pid

    async def _start_cold(self, spec: ReplicaSpec, order: dict, listen_fd: int) -> int:
        with open_log(spec.log_path) as log:
            process = await asyncio.create_subprocess_exec(
                spec.python, "-I", str(ZYGOTE_SCRIPT), "replica",
                stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log, pass_fds=[listen_fd], env=order["env"],
                start_new_session=True,
            )
        assert process.stdin is not None  # asked for: PIPE
        process.stdin.write(json.dumps({**order, "fd": listen_fd}).encode())
        process.stdin.close()
        self.exit_codes[process.pid] = asyncio.ensure_future(process.wait())
        return process.pid

    @staticmethod
    def _order(spec: ReplicaSpec, layout: WorkerLayout, math_env: dict[str, str], port: int, group) -> dict:
        """What the replica's leader is told (see zygote.py)."""
        metrics_dir = spec.env.get(METRICS_DIR_ENV)
        if metrics_dir:
            Path(metrics_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**base_env(), **math_env, **spec.env, **layout.worker_env(metrics_dir, port)}
        env.pop(PLAIN_KEY_ENV, None)  # a replica only ever sees the key's hash
        return {
            "cwd": str(layout.src),
            "env": env,
            "argv": layout.worker_argv("{fd}", "{worker_id}"),
            "workers": layout.workers,
            "log": str(spec.log_path),
            "cgroup_procs": str(group.procs_file) if group else None,
        }

    def _memory_group(self, spec: ReplicaSpec) -> Optional[cgroup.MemoryGroup]:
        if not spec.memory_bytes:
            return None
        why_not = cgroup.why_unavailable()
        if why_not is None:
            try:
                return cgroup.MemoryGroup.create(spec.label, spec.memory_bytes)
            except OSError as error:
                why_not = f"its memory cgroup could not be made ({error})"
        self._say_once(f"replicas run without their memory limit: {why_not}")
        return None

    # Watching

    def _watch(self, started: Started, group: Optional[cgroup.MemoryGroup]) -> None:
        self.ended[started.pid] = asyncio.ensure_future(self._until_ended(started, group))

    async def _until_ended(self, started: Started, group: Optional[cgroup.MemoryGroup]) -> str:
        code_known = self.exit_codes.get(started.pid)
        code = await code_known if code_known is not None else None
        if code is None:  # adopted, or its zygote went: not ours to reap, so wait for it to go
            await until_gone(started)
        self.exit_codes.pop(started.pid, None)
        reason = exit_reason(code, group)
        if group is not None:
            await asyncio.to_thread(group.remove)
        return reason

    def _drop_zygote(self, key: tuple) -> None:
        self.users.pop(key, None)
        spawning = self.zygotes.pop(key, None)
        if spawning is not None:
            self.closing.append(asyncio.ensure_future(close_zygote(spawning)))

    def _say_once(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            self.say(line)


async def close_zygote(spawning: asyncio.Future) -> None:
    with contextlib.suppress(Exception):
        zygote = await spawning
        await zygote.close()


def base_env() -> dict[str, str]:
    """The serving environment every replica and zygote starts from: this process's, without
    the plain API key (each replica's spec carries the key's hash)."""
    env = bentoml_serving.serve_env("")
    env.pop(API_KEY_SHA256_ENV)
    return env


def open_log(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


def create_time_of(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:  # already gone: its exit is reported all the same
        return 0.0


def is_same_process(started: Started) -> bool:
    try:
        return abs(psutil.Process(started.pid).create_time() - started.create_time) < SAME_PROCESS_S
    except psutil.Error:
        return False


def signal_group(started: Started, signum: int) -> None:
    """Signal the replica's process group, unless its pid now belongs to another process."""
    if is_same_process(started):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(started.pid, signum)


async def until_gone(started: Started) -> None:
    """Wait for a process that is not this one's child to exit (a pidfd turns readable then)."""
    try:
        pidfd = os.pidfd_open(started.pid)
    except ProcessLookupError:
        return
    except OSError:  # a kernel before 5.3: look now and then
        while is_same_process(started):
            await asyncio.sleep(GONE_POLL_S)
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()

    def exited() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(pidfd, exited)
    try:
        if is_same_process(started) or not started.create_time:
            await gone
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
