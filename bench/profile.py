"""`python -m bench.profile --target bentoml|proto|conduit`: where a server's CPU goes per request.

Starts one iris server, loads it with wrk (sequential by default), samples every process of it with
`py-spy record --subprocesses --nonblocking`, then prints CPU ms per request, self time by
library, and the functions with the most inclusive time. For conduit applied to the local
target, its replica (BentoML's worker) and the gateway are sampled side by side and reported
apart (the gateway's subprocesses include its zygote and replicas: read its own functions). Writes the raw stacks under bench/results/profile-<target>*.txt
(collapsed format: flamegraph.pl or speedscope read it).
"""
from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.conduit_adapter import ConduitEndpoint
from bench.contenders import BentoMLPeer
from bench.load import run_wrk
from bench.models import make_models

PROTOTYPES = Path(__file__).resolve().parent / "prototypes"
RESULTS = Path(__file__).resolve().parent / "results"
RATE_HZ = 250
# leaf-frame file path fragment -> library bucket (first match wins)
BUCKETS = [
    ("model (sklearn/numpy)", ("sklearn/", "numpy/", "scipy/", "threadpoolctl")),
    ("pydantic", ("pydantic",)),
    ("bentoml", ("_bentoml_sdk/", "_bentoml_impl/", "bentoml/")),
    ("opentelemetry/prometheus", ("opentelemetry", "prometheus_client")),
    ("starlette/fastapi", ("starlette/", "fastapi/")),
    ("uvicorn/httptools/h11", ("uvicorn/", "httptools", "h11/")),
    ("asyncio/anyio/threads", ("asyncio/", "anyio/", "threading.py", "concurrent/", "selectors.py")),
    ("json (orjson/json)", ("orjson", "json/")),
    ("conduit", ("conduit/",)),
]


# uvloop + httptools are conduit dependencies; this folder on PYTHONPATH hides them (the "before")
SLOWIO = {"PYTHONPATH": str(PROTOTYPES / "without_fastio")}


def contender(target: str, model, work: Path, slowio: bool):
    extra = SLOWIO if slowio else {}
    if target == "bentoml":
        return BentoMLPeer(model, work, extra_env=extra)
    if target == "proto":
        return BentoMLPeer(model, work, 1, "proto-w1", "fast_service:Fast", PROTOTYPES, extra_env=extra)
    return ConduitEndpoint(model, work, cpu=1, extra_env=extra)


def record(pid: int, seconds: float, out: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", str(RATE_HZ),
               "--duration", str(int(seconds)), "--format", "raw", "--output", str(out)]
    subprocess.run(command, capture_output=True, timeout=seconds + 60, check=True)


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def bucket(frame: str) -> str:
    return next((name for name, parts in BUCKETS if any(p in frame for p in parts)), "other")


def summarize(stacks: list[tuple[list[str], int]], requests: int) -> str:
    worker = [(frames, n) for frames, n in stacks]
    total = sum(n for _, n in worker)
    by_bucket: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    for frames, n in worker:
        by_bucket[bucket(frames[-1])] += n
        for name in {re.sub(r" \(.*?:\d+\)$", lambda m: m.group(0).split(":")[0] + ")", f) for f in frames[1:]}:
            inclusive[name] += n
    cpu_ms = total / RATE_HZ * 1000
    lines = [f"{requests} requests, {total} samples at {RATE_HZ} Hz: {cpu_ms / max(requests, 1):.3f} ms of CPU per request",
             "", "self time by library:"]
    lines += [f"  {100 * n / total:5.1f}%  {cpu_ms * n / total / max(requests, 1):6.3f} ms/req  {name}"
              for name, n in by_bucket.most_common()]
    lines += ["", "most inclusive time (function (file)):"]
    lines += [f"  {100 * n / total:5.1f}%  {name[:150]}" for name, n in inclusive.most_common(40)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--target", choices=["bentoml", "proto", "conduit"], default="bentoml")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--slowio", action="store_true", help="hide uvloop + httptools (uvicorn's defaults)")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    stem = f"profile-{args.target}{'-slowio' if args.slowio else ''}"
    with tempfile.TemporaryDirectory(prefix="conduit-profile-") as folder:
        work = Path(folder)
        model = make_models(["iris"], work / "models")["iris"]
        server = contender(args.target, model, work, args.slowio)
        try:
            server.start()
            parts = sampled_processes(server)
            spies = [threading.Thread(target=record, args=(pid, args.seconds + 1, RESULTS / f"{stem}{suffix}.txt"))
                     for suffix, pid in parts.items()]
            for spy in spies:
                spy.start()
            load = run_wrk(server.url, server.body, args.clients, args.seconds, server.auth)
            for spy in spies:
                spy.join()
        finally:
            server.stop()
    print(f"{args.target}: {load.rps:.0f} req/s, p50 {load.p50_ms:.2f} ms with {args.clients} client(s)")
    for suffix in parts:
        raw = RESULTS / f"{stem}{suffix}.txt"
        print(f"\n== {suffix.lstrip('-') or args.target} ==")
        print(summarize(parse(raw), load.requests))
        print(f"raw stacks: {raw}")
    return 0


def sampled_processes(server) -> dict[str, int]:
    """Raw-file suffix -> the pid whose process tree py-spy samples: the server, or for
    conduit applied to the local target its replica and its gateway (from the gateway's state file)."""
    if server.server is not None:
        return {"": server.server.process.pid}
    return {"-replica": server.replica_pids()[0], "-gateway": server.gateway_pid()}


if __name__ == "__main__":
    sys.exit(main())
