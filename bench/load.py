"""Load from `wrk` (one client thread: it costs ~2% of a core, so the server gets the rest).

`wrk -c N` keeps N connections each sending its next request as soon as the last answer arrives
(a closed loop): N=1 is sequential. The Lua script in wrk/post.lua posts one fixed body and
prints the summary as JSON, which `run_wrk` parses.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"
MARKER = "BENCH_JSON "


class LoadToolMissing(RuntimeError):
    pass


@dataclass
class LoadResult:
    clients: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int

    def to_json(self) -> dict:
        return asdict(self)


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise LoadToolMissing("wrk is not installed: apt-get install -y wrk (see bench/README.md)")
    return path


def run_wrk(url: str, body: bytes, clients: int, seconds: float, auth: str | None = None) -> LoadResult:
    env = {**os.environ, "BENCH_BODY": body.decode(), "BENCH_AUTH": auth or ""}
    command = [
        wrk_path(), "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(LUA_SCRIPT), url,
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 30)
    return parse_wrk_output(completed.stdout + completed.stderr, clients)


def parse_wrk_output(output: str, clients: int) -> LoadResult:
    line = next((l for l in output.splitlines() if l.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
    summary = json.loads(line[len(MARKER):])
    seconds = summary["duration_us"] / 1e6
    errors = sum(value for key, value in summary.items() if key.startswith("errors_"))
    return LoadResult(
        clients=clients,
        requests=summary["requests"],
        seconds=round(seconds, 3),
        rps=round(summary["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        mean_ms=round(summary["mean_us"] / 1000, 3),
        errors=errors,
    )
