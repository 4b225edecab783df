"""What the gateway tells: its state file and each deployment's /metrics, read from its runtimes.

`$CONDUIT_HOME/run/gateway/state.json` (private, like all of CONDUIT_HOME) holds every replica
(pid, port, state: a restarted gateway adopts them from here) and, per deployment, its state,
replicas ready/desired, requests in flight and held, the last request time and counters:
`conduit status` and the dashboard read it. Pure functions of the runtimes, but `write_state`.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conduit.targets.local.runtime import Front, RevisionRuntime

# The state file is padded to a multiple of this, so that on a full disk the next state can still
# be written over its own blocks (a restarted gateway adopts replicas from it: it must not go stale).
STATE_SLACK = 64 * 1024


def state_file(home: Path) -> Path:
    return home / "run" / "gateway" / "state.json"


def read_state(home: Path) -> dict[str, Any]:
    """What the running gateway last wrote ({} when none ever ran or the file is unreadable). A
    read that met an overwrite in place (full disk) is read again."""
    for _ in range(3):
        try:
            return json.loads(state_file(home).read_text())
        except OSError:
            return {}
        except ValueError:
            time.sleep(0.01)
    return {}


def deployment_state(front: Front) -> str:
    """serving, scaled to zero, scaling to zero (the last replicas finish their requests), starting."""
    runtime = front.serving
    if runtime is None:
        return "starting" if front.starting else "stopped"
    if runtime.ready():
        return "serving"
    if runtime.live() or runtime.settings.min_replicas > 0:
        return "starting"
    return "scaling to zero" if runtime.replicas else "scaled to zero"


def deployment_summary(front: Front, now: float) -> dict[str, Any]:
    runtime = front.serving
    summary: dict[str, Any] = {"state": deployment_state(front), "starting_revisions": sorted(front.starting)}
    if runtime is not None:
        summary.update(
            revision=runtime.number,
            project=runtime.settings.project,
            replicas_ready=len(runtime.ready()),
            replicas_desired=runtime.autoscaler.desired(now),
            replicas_starting=sum(1 for r in runtime.replicas.values() if r.state == "starting"),
            in_flight=sum(r.in_flight for r in runtime.replicas.values()),
            held=runtime.held,
            last_request_at=runtime.last_request_at,
            failing=runtime.last_failure,
            counters=runtime.counters,
        )
    return summary


def replica_rows(runtimes: Iterable[RevisionRuntime]) -> list[dict[str, Any]]:
    return [
        {
            "name": runtime.name,
            "revision": runtime.number,
            "replica": replica.number,
            "state": replica.state,
            "pid": replica.started.pid,
            "port": replica.started.port,
            "create_time": replica.started.create_time,
            "warm": replica.started.warm,
        }
        for runtime in runtimes
        for replica in runtime.replicas.values()
        if replica.started is not None
    ]


def write_state(home: Path, port: int, fronts: dict[str, Front], runtimes: Iterable[RevisionRuntime]) -> None:
    """Replace the state file atomically (a reader never sees half of it)."""
    now = time.monotonic()
    state = {
        "pid": os.getpid(),
        "port": port,
        "written_at": time.time(),
        "deployments": {name: deployment_summary(front, now) for name, front in fronts.items()},
        "replicas": replica_rows(runtimes),
    }
    path = state_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state, indent=1).encode()
    padded = text.ljust(-(-len(text) // STATE_SLACK) * STATE_SLACK)  # JSON ignores trailing spaces
    staging = path.with_suffix(".tmp")
    try:
        staging.write_bytes(padded)
        os.replace(staging, path)
    except OSError:  # a full disk: overwrite the file in place, within the room its padding keeps
        staging.unlink(missing_ok=True)
        overwrite_in_place(path, padded)


def overwrite_in_place(path: Path, data: bytes) -> None:
    """Write `data` over the file's own blocks (no new ones are needed while it fits its size)."""
    size = path.stat().st_size
    if len(data.rstrip()) > size:
        raise OSError(28, "no room in the state file for the new state")
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data[:size].ljust(size), 0)
    finally:
        os.close(fd)


def metrics_text(runtime: RevisionRuntime, now: float) -> str:
    """The gateway's Prometheus series for one deployment's serving revision."""
    labels = f'deployment="{runtime.name}",revision="{runtime.number}"'
    counters = runtime.counters
    by_state = {state: sum(1 for r in runtime.replicas.values() if r.state == state) for state in ("starting", "ready", "draining")}
    series: list[tuple[str, str, list[tuple[str, object]]]] = [
        ("replicas", "gauge", [(f'{labels},state="{state}"', count) for state, count in by_state.items()]),
        ("replicas_desired", "gauge", [(labels, runtime.autoscaler.desired(now))]),
        ("queue_length", "gauge", [(labels, runtime.held)]),
        ("in_flight", "gauge", [(labels, sum(r.in_flight for r in runtime.replicas.values()))]),
        ("requests_total", "counter", [(labels, counters["requests"])]),
        ("cold_starts_total", "counter", [(labels, counters["cold_starts"])]),
        ("held_requests_total", "counter", [(labels, counters["held"])]),
        ("held_wait_seconds_total", "counter", [(labels, f"{counters['held_wait_s']:.6f}")]),
        ("replica_restarts_total", "counter", [(labels, counters["restarts"])]),
    ]
    lines = []
    for name, kind, samples in series:
        lines.append(f"# TYPE conduit_gateway_{name} {kind}")
        lines += [f"conduit_gateway_{name}{{{sample_labels}}} {value}" for sample_labels, value in samples]
    return "\n".join(lines) + "\n"


async def fetch_text(port: int, path: str, timeout: float = 2.0) -> str:
    """A small GET's body (a replica's metrics), or "" when it does not answer."""

    async def get() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return await reader.read()
        finally:
            writer.close()

    try:
        response = await asyncio.wait_for(get(), timeout)
    except (OSError, asyncio.TimeoutError):
        return ""
    _head, _, body = response.partition(b"\r\n\r\n")
    return body.decode("utf-8", "replace")
