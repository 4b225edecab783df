"""A warm process that forks replicas, run as a script by an environment's interpreter.

    python -I zygote.py serve CONTROL_FD PRELOAD_JSON REFUSE_JSON   (a zygote: warm start)
    python -I zygote.py replica < ORDER_JSON                        (one replica, cold start)

A replica's start is mostly imports (BentoML's worker side 0.7 s, scikit-learn 0.7 s, torch
1.4 s here); a zygote makes them once per environment, then forks each replica with them done,
as gunicorn's `preload_app` and Android's zygote do, so a replica only loads its model and binds.

This file imports only the standard library, and whatever its orders name, from the interpreter
running it: never conduit, because each Bento carries the copy of conduit's runtime it was built
with (next to its service.py) and its workers must import that one. It knows nothing of BentoML
either: the gateway's orders say which modules to preload and which command each worker runs
(`conduit.targets.local.bentoml_serving` writes them).

The zygote: sets nothing itself (it is started with the environment's math-thread variables),
imports the preload modules (one that fails is skipped, said once on stderr), freezes what that
made out of the garbage collector's reach (see conduit/startup.py), says `{"ready": ..}` on the
control socket, then serves orders (JSON, one per SOCK_SEQPACKET message, the replica's listening
socket attached with SCM_RIGHTS):

    {"id", "cwd", "env", "argv", "workers", "log", "cgroup_procs"}  ->  {"id", "pid"} | {"id", "error"}

and reports each replica's exit as `{"exit": pid, "code": c}` (code as subprocess gives it: -9
for SIGKILL). It forks only while it runs a single thread (only the forking thread survives a
fork) and before any module in REFUSE_JSON (one that reads the environment when imported) was
imported; otherwise it answers with the reason, and the gateway starts the replica cold. It exits
when the gateway's end of the control socket closes; its replicas keep running.

A replica is a process group: its leader (a fork of the zygote, or the cold process) joins the
replica's memory cgroup, sends its output to the replica's log and forks `workers` workers, each
running the order's `argv` (`-m MODULE ...`, with `{fd}` and `{worker_id}` filled in) as
`python -m` would, on the one listening socket. The leader watches them: when one exits unasked
it stops the others and exits the same way, so the gateway sees one exit per replica; SIGTERM to
the group stops the workers gracefully and the leader exits 0. Workers die with their leader.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import traceback

MAX_MESSAGE = 1 << 20
STARTUP_GC_THRESHOLD = 50_000  # as conduit/startup.py: few collections while importing
PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    if argv[1:2] == ["serve"]:
        serve(socket.socket(fileno=int(argv[2])), json.loads(argv[3]), json.loads(argv[4]))
    elif argv[1:2] == ["replica"]:
        order = json.loads(sys.stdin.buffer.read())
        lead(order, order["fd"], {})
    else:
        sys.exit(f"usage: {argv[0]} serve CONTROL_FD PRELOAD_JSON REFUSE_JSON | replica < ORDER_JSON")


# The zygote


def serve(control: socket.socket, modules: list[str], refuse: list[str]) -> None:
    set_by_imports = preload(modules)
    send(control, {"ready": True, "unsafe": why_unsafe(refuse)})
    wakeup, wakeup_writer = socket.socketpair()
    wakeup_writer.setblocking(False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wakeup_writer.fileno(), warn_on_full_buffer=False)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wakeup, selectors.EVENT_READ)
    while True:
        for key, _events in selector.select():
            if key.fileobj is wakeup:
                wakeup.recv(4096)
            elif not answer(control, refuse, set_by_imports, (selector, control, wakeup, wakeup_writer)):
                return  # the gateway is gone: replicas keep running, a new gateway adopts them
        reap(control)


def preload(modules: list[str]) -> dict[str, str]:
    """Import `modules`; what importing them added to the environment (scikit-learn's KMP_*),
    which a fresh worker would have too."""
    usual = gc.get_threshold()
    gc.set_threshold(STARTUP_GC_THRESHOLD, *usual[1:])
    before = dict(os.environ)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - anything a module raises while importing
            print(f"zygote: preloading {name} failed ({type(error).__name__}: {error}); workers import it themselves", file=sys.stderr, flush=True)
    gc.freeze()  # what the forks share is never touched by a collection, so its pages stay shared
    gc.set_threshold(*usual)
    return {key: value for key, value in os.environ.items() if before.get(key) != value}


def why_unsafe(refuse: list[str]) -> str | None:
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:
        return f"the zygote runs {threads} threads, and threads do not survive a fork"
    imported = [name for name in refuse if name in sys.modules]
    if imported:
        return f"{imported[0]} was imported before a replica's environment was known"
    return None


def answer(control: socket.socket, refuse: list[str], set_by_imports: dict[str, str], own: tuple) -> bool:
    """Serve one order; False when the control socket closed."""
    message, fds, _flags, _address = socket.recv_fds(control, MAX_MESSAGE, 1)
    if not message:
        return False
    order = json.loads(message)
    reason = why_unsafe(refuse) or (None if len(fds) == 1 else "no listening socket came with the order")
    if not reason:
        try:
            send(control, {"id": order["id"], "pid": fork(lambda: lead(order, fds[0], set_by_imports, own))})
        except OSError as error:  # no fork (out of memory, process limit): the gateway starts it cold
            reason = f"fork failed ({error})"
    if reason:
        send(control, {"id": order["id"], "error": reason})
    for fd in fds:
        os.close(fd)
    return True


def reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        send(control, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def send(control: socket.socket, message: dict) -> None:
    try:
        control.sendall(json.dumps(message).encode())
    except OSError:  # the gateway is gone; the loop sees it on its next read
        pass


# A replica: its leader and workers


def lead(order: dict, listen_fd: int, set_by_imports: dict[str, str], inherited: tuple = ()) -> None:
    """Become the replica's leader, start its workers, and exit as the replica ended."""
    signal.set_wakeup_fd(-1)  # first: a signal must not write into a descriptor closed below
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for end in inherited:
        end.close()
    if os.getpid() != os.getpgrp():  # forked from the zygote; a cold start is already its own session
        os.setsid()
    redirect_output(order["log"])
    if order.get("note"):
        print(order["note"], flush=True)
    if order.get("cgroup_procs"):
        with open(order["cgroup_procs"], "w") as procs:  # before the model loads: it is all counted
            procs.write(str(os.getpid()))
    leader = os.getpid()
    workers = [fork(lambda i=i: become_worker(order, listen_fd, i, set_by_imports, leader)) for i in range(1, order["workers"] + 1)]
    os.close(listen_fd)
    exit_like(watch(set(workers)))


def redirect_output(log: str) -> None:
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (out, 1), (out, 2)):
        os.dup2(fd, target)
    os.close(out)
    os.close(null)


def watch(workers: set[int]) -> int:
    """Wait for every worker; the wait status that ends the replica (0 when it was stopped)."""
    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True  # the signal went to the whole group: the workers are stopping too

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ending = 0
    while workers:
        pid, status = os.wait()
        workers.discard(pid)
        if not stopping:
            stopping, ending = True, status
            print(f"[conduit] worker {pid} ended ({describe(status)}): stopping the replica", flush=True)
            os.killpg(0, signal.SIGTERM)
    return ending


def describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def exit_like(status: int) -> None:
    code = os.waitstatus_to_exitcode(status)
    sys.stdout.flush()
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught, nor reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 128 - code)


def become_worker(order: dict, listen_fd: int, worker_id: int, set_by_imports: dict[str, str], leader: int) -> None:
    """In a fork of the leader: become what `python ARGV` would be in the order's folder."""
    die_with_parent(leader)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    os.chdir(order["cwd"])
    sys.path.insert(0, order["cwd"])  # `python -m` puts its working folder first
    os.environ.clear()
    os.environ.update(order["env"])
    os.environ.update(set_by_imports)  # as the same imports in a fresh worker would
    reseed_numpy()
    fill = {"{fd}": str(listen_fd), "{worker_id}": str(worker_id)}
    _dash_m, module, *args = [fill.get(arg, arg) for arg in order["argv"]]
    sys.argv = [module, *args]
    sys.modules.pop(module, None)  # preloaded; it runs afresh as __main__, as `python -m` would
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def die_with_parent(leader: int) -> None:
    """A worker must not outlive its leader (killed outright, it cannot stop them itself)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != leader:  # the leader died before prctl took effect
        os._exit(1)


def reseed_numpy() -> None:
    """NumPy seeds its global generator when imported: forks would all share one sequence
    (Python's `random` reseeds itself after a fork)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def fork(body) -> int:
    """Run `body` in a forked child, which exits with its outcome and never returns here."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        body()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it was, the child must reach os._exit
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    # Run by path, an interpreter puts this file's folder first on sys.path (without -I, or
    # before 3.11): drop it, so no module of conduit's next to this file can be imported by mistake.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    main(sys.argv)
