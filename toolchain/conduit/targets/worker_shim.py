"""The worker command BentoML's arbiter runs when a fork server serves its revision.

BentoML starts each worker as `python -m _bentoml_impl.worker.service ...`; the arbiter of a
revision that the supervisor forked runs this script as its `python` instead (see
`conduit.targets.forkserver`). It hands its arguments, environment, working folder and open file
descriptors (the listening socket among them) to the fork server, which forks an already-warm
worker; then it stands in for that worker towards the arbiter: it passes on the signals it gets
and exits as the worker did. Whenever the fork server is not there or declines, it becomes the
ordinary worker by exec'ing the real interpreter with the same arguments.

Standard library only, run with `python -S` from a private folder: it must start in milliseconds.
"""
import json
import os
import signal
import socket
import sys

SOCKET_ENV = "CONDUIT_FORKSERVER_SOCKET"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
MESSAGE_BYTES = 1 << 20


def run_unforked(reason=None):
    if reason:
        print(f"[conduit worker] starting without the fork server: {reason}", file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])


def open_fds(exclude):
    """What a worker exec'd here would inherit: every descriptor open in this process."""
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd == exclude:
            continue
        try:
            os.fstat(fd)  # the listing's own descriptor is closed again by now
        except OSError:
            continue
        fds.append(fd)
    return sorted(fds)


def ask_for_worker(path):
    """The connection and the forked worker's pid, or (None, why) if there will be none."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect(path)
        fds = open_fds(connection.fileno())
        request = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ), "fds": fds}
        socket.send_fds(connection, [json.dumps(request).encode()], fds)
        reply = json.loads(connection.recv(MESSAGE_BYTES) or b"{}")
    except (OSError, ValueError) as error:
        connection.close()
        return None, f"{type(error).__name__}: {error}"
    if "pid" not in reply:
        connection.close()
        return None, reply.get("declined", "no reply")
    return connection, reply["pid"]


def stand_in(connection, pid):
    """Pass signals on to the worker and wait for the fork server to say how it ended."""
    forwarded = set()

    def forward(received, _frame):
        forwarded.add(received)
        try:
            os.kill(pid, received)
        except OSError:  # already gone: its exit is on the way
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    try:
        ended = json.loads(connection.recv(MESSAGE_BYTES) or b"{}")
    except (OSError, ValueError):
        ended = {}
    if "exit" not in ended:  # the fork server went away: the worker must not outlive its stand-in
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        sys.exit(1)
    code = ended["exit"]
    if code < 0:
        end_by_signal(pid, -code, stopped=-code in forwarded)
    sys.exit(code)


def end_by_signal(pid, signum, stopped):
    """End the way the worker did, so the arbiter sees what happened. A signal the arbiter sent
    (through this stand-in) is a normal stop; any other (the OOM killer, a `kill -9`) gets one
    line in the revision's log."""
    if not stopped:
        name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
        print(f"[conduit worker] worker {pid} was ended by {name}; BentoML's arbiter starts another", file=sys.stderr, flush=True)
    if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled: nothing to reset
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def main():
    path = os.environ.pop(SOCKET_ENV, None)
    if not path:
        run_unforked()
    connection, pid_or_reason = ask_for_worker(path)
    if connection is None:
        run_unforked(pid_or_reason)
    stand_in(connection, pid_or_reason)


if __name__ == "__main__":
    main()
