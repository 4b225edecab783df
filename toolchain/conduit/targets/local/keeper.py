"""Keeps the gateway running: `python -m conduit.targets.local.keeper --fd N`.

`conduit apply` binds the gateway's port (so a port taken by another program is its error, said
at once) and starts this keeper with the socket. The keeper holds the socket for good and runs the
gateway with it; when the gateway dies (a crash, kill -9) it starts another at once, backing off to
at most `MAX_BACKOFF_S` while it keeps dying. Clients meanwhile wait in the socket's backlog
instead of being refused: the URL never changes and a restart drops only the requests the dead
gateway had in flight. The new gateway adopts the replicas the old one left (see gateway.adopt).

The keeper is a child subreaper, so replicas whose zygote died with the gateway become its
children and are reaped here. SIGTERM: the gateway is asked to stop (it stops every replica), then
the keeper exits. Standard library only, a few dozen lines: the part that must not crash.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_BACKOFF_S = 5.0
STABLE_S = 30.0  # a gateway that ran this long resets the backoff


def become_subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: orphans go to init, which reaps them too
        pass


def say(line: str) -> None:
    try:
        print(f"[conduit keeper] {line}", flush=True)
    except OSError:  # a full disk under the log must not stop the keeper
        pass


class Keeper:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.gateway: subprocess.Popen | None = None
        self.stopping = False

    def start_gateway(self) -> None:
        command = [sys.executable, "-m", "conduit.targets.local.gateway", "--fd", str(self.fd)]
        self.gateway = subprocess.Popen(command, pass_fds=[self.fd])
        say(f"gateway started, pid {self.gateway.pid}")

    def stop(self, *_: object) -> None:
        self.stopping = True
        if self.gateway is not None and self.gateway.returncode is None:
            try:
                os.kill(self.gateway.pid, signal.SIGTERM)  # not Popen.poll: it would reap here
            except ProcessLookupError:
                pass

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        backoff = 0.0
        while not self.stopping:
            began = time.monotonic()
            self.start_gateway()
            self.wait_for_gateway()
            if self.stopping:
                break
            backoff = 0.0 if time.monotonic() - began > STABLE_S else min(max(backoff * 2, 0.1), MAX_BACKOFF_S)
            say(f"gateway exited ({self.gateway.returncode}); restarting in {backoff:.1f}s")  # type: ignore[union-attr]
            time.sleep(backoff)
        self.wait_for_gateway()
        return 0

    def wait_for_gateway(self) -> None:
        """Reap every child (adopted orphans too) until the gateway itself has exited."""
        assert self.gateway is not None
        while self.gateway.returncode is None:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == self.gateway.pid:
                self.gateway.returncode = os.waitstatus_to_exitcode(status)
                return


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # private, as conduit.paths.keep_private (not imported: this stays stdlib only)
    parser = argparse.ArgumentParser(prog="conduit.targets.local.keeper")
    parser.add_argument("--fd", type=int, required=True, help="the gateway's listening socket")
    args = parser.parse_args(argv)
    os.set_inheritable(args.fd, True)
    become_subreaper()
    say(f"pid {os.getpid()}")
    return Keeper(args.fd).run()


if __name__ == "__main__":
    sys.exit(main())
