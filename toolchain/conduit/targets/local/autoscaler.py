"""How many replicas a revision should run, from the requests it has in flight.

Knative's rule, made small: a revision needs `ceil(in flight / target)` replicas, where in flight
counts the requests being served and those held while a replica starts, and `target` is the
manifest's `replica_concurrency`. Scaling out is immediate; scaling in waits until a level has not
been needed for `cooldown` seconds, so a burst does not start and stop replicas over and over.
With `min_replicas: 0`, a revision with no request in flight for `cooldown` seconds needs none:
it scales to zero. The result is always within `min_replicas..max_replicas`.

Pure: the gateway tells it what it sees (`observe`) and asks (`desired`); the clock is passed in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Scaling:
    min_replicas: int
    max_replicas: int
    cooldown_s: float
    target: int  # in-flight requests per replica before another one is started


class Autoscaler:
    def __init__(self, scaling: Scaling, now: float, initial: int = 1) -> None:
        self.scaling = scaling
        # level -> the last time that many replicas were needed. A new revision counts its first
        # replicas as needed now, so it serves for at least one cooldown before scaling to zero.
        self.last_needed: dict[int, float] = {}
        self.observe(now, initial * scaling.target)

    def needed(self, in_flight: int) -> int:
        return min(math.ceil(in_flight / self.scaling.target), self.scaling.max_replicas)

    def observe(self, now: float, in_flight: int) -> None:
        for level in range(1, self.needed(in_flight) + 1):
            self.last_needed[level] = now

    def desired(self, now: float) -> int:
        recent = [level for level, seen in self.last_needed.items() if now - seen < self.scaling.cooldown_s]
        return max(self.scaling.min_replicas, min(max(recent, default=0), self.scaling.max_replicas))

    def idle_for(self, now: float) -> float:
        """Seconds since any request was in flight (since the revision started, if none came)."""
        return now - self.last_needed.get(1, now)
