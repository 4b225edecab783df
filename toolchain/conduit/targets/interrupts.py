"""Ctrl-C (SIGINT) and SIGTERM held off while a lifecycle step completes.

A step that changes what serves (start a revision and record its process, switch the endpoint and
retire the old revision, stop a revision that failed, delete a deployment) runs whole: a signal that
arrives meanwhile is delivered once the step is done, so no command leaves a half-made change (a
process the store does not know, a revision left `starting`, two revisions serving, a router
pointed at a stopped server). Inside a held step, `Shield.lifted()` marks where an interrupt may
act at once (waiting for a revision to become ready: the step then fails that revision).
Python runs signal handlers in the main thread only; called from another thread (a library
caller's), a step runs unshielded, and the next command's reconcile (`local.reconcile`) cleans up.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shield:
    """Holds SIGINT/SIGTERM (records them) while active; `deliver` sends the first one held."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.received: list[int] = []
        self.previous: dict[int, Any] = {}

    def hold(self) -> None:
        self.previous = {signum: signal.signal(signum, self._record) for signum in DEFERRED_SIGNALS}

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def deliver(self) -> None:
        """Send the first signal held to the handler now in place (KeyboardInterrupt for Ctrl-C)."""
        if self.received:
            signum, self.received = self.received[0], []
            signal.raise_signal(signum)

    def _record(self, signum: int, _frame: object) -> None:
        self.received.append(signum)

    @contextlib.contextmanager
    def lifted(self) -> Iterator[None]:
        """Let interrupts act at once inside the block (one held so far is delivered on entering)."""
        if not self.active:
            yield
            return
        self.restore()
        try:
            self.deliver()
            yield
        finally:
            self.hold()


@contextlib.contextmanager
def deferred() -> Iterator[Shield]:
    """Run the block with SIGINT/SIGTERM held; the first one that arrived is delivered on leaving
    it, as if it came just after."""
    shield = Shield(active=threading.current_thread() is threading.main_thread())
    if not shield.active:
        yield shield
        return
    shield.hold()
    try:
        yield shield
    finally:
        shield.restore()
        shield.deliver()
