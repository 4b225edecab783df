"""What the gateway knows of each live revision, and of each deployment name, in its memory.

A `Replica` is one replica as the gateway sees it (its state, requests in flight); a
`RevisionRuntime` is a revision being started, serving or retiring, with its replicas, its
autoscaler and its counters; a `Front` is a deployment name: the revision requests go to, and the
event requests held while no replica is ready wait on. `gateway.py` moves them; `telling.py` reads
them into the state file and /metrics.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Optional

from conduit.serving.auth import KeyCheck
from conduit.store import Revision
from conduit.targets.local.autoscaler import Autoscaler
from conduit.targets.local.replicas import Started
from conduit.targets.local.settings import ServeSettings


@dataclass(eq=False)
class Replica:
    number: int
    state: str = "starting"  # starting -> ready -> draining -> stopping; suspect: a request could not reach it
    started: Optional[Started] = None
    in_flight: int = 0
    ready_at: Optional[float] = None
    stopping: bool = False


class RevisionRuntime:
    """One live revision as the gateway runs it: its replicas, its autoscaler and its counters."""

    def __init__(self, record: Revision, now: float) -> None:
        self.record = record
        self.settings = ServeSettings.from_dict(record.settings)
        self.key_check = KeyCheck(record.key_sha256)  # made once: it is asked on every request
        self.replicas: dict[int, Replica] = {}
        self.numbers = iter(range(1, 1 << 30))
        # A revision being started counts its first replica as needed (it serves for at least one
        # cooldown); one already serving when the gateway (re)started keeps only what it needs:
        # a restart must not wake every deployment that was at zero.
        first = max(1, self.settings.min_replicas) if record.state == "starting" else self.settings.min_replicas
        self.autoscaler = Autoscaler(self.settings.scaling, now, initial=first)
        self.created = now
        self.promoted = record.state == "serving"
        self.retiring = False
        self.held = 0
        self.failures = 0
        self.next_start_at = 0.0
        self.last_failure: Optional[str] = None
        self.counters = {"requests": 0, "cold_starts": 0, "held": 0, "held_wait_s": 0.0, "restarts": 0}
        self.last_request_at: Optional[float] = None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def number(self) -> int:
        return self.record.revision

    def ready(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.state == "ready"]

    def live(self) -> list[Replica]:
        """Replicas that serve or will: not draining, not stopping."""
        return [r for r in self.replicas.values() if r.state in ("starting", "ready", "suspect")]

    def pick(self) -> Optional[Replica]:
        ready = self.ready()
        return min(ready, key=lambda r: r.in_flight) if ready else None

    def demand(self) -> int:
        return self.held + sum(r.in_flight for r in self.replicas.values())


@dataclass(eq=False)
class Front:
    """One deployment name: the revision that serves it, and the event held requests wait on."""

    name: str
    serving: Optional[RevisionRuntime] = None
    starting: dict[int, RevisionRuntime] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.wakeup.set()
        self.wakeup = asyncio.Event()

    def runtime(self) -> Optional[RevisionRuntime]:
        """Where a request goes: the serving revision, else a first revision still starting."""
        if self.serving is not None:
            return self.serving
        return next(iter(self.starting.values()), None)
