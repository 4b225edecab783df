"""`python -m bench.router_cost`: what conduit's local router adds to each request.

Starts a minimal backend (a raw ASGI app under uvicorn answering a fixed JSON body: cheap, so the
relay's share shows), one router process per router module given, and loads the backend directly
and through each router with wrk, interleaved. Prints req/s, p50, p99 and the router process's CPU
per request (user + system time from /proc, over the requests it relayed).

    python -m bench.router_cost [--clients 8] [--seconds 3] [--rounds 2] [--router FILE.py ...]

`--router` adds a router implementation from a file (a copy of an older router.py, say) next to
conduit's current one, for a before/after in one run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.load import run_wrk
from bench.servers import ServerProcess, free_port

BACKEND = '''
BODY = b'{"result": [[0.9, 0.1]], "run_id": "x", "run_time_ms": 0.01, "prediction_ids": ["y"]}'


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
'''
START_ROUTER = (
    "import importlib.util, sys; spec = importlib.util.spec_from_file_location('router', sys.argv[1]); "
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
    "sys.exit(module.main(sys.argv[2:]))"
)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


class Router:
    def __init__(self, label: str, source: Path, backend_file: Path, work: Path) -> None:
        self.label, self.source, self.backend_file, self.work = label, source, backend_file, work
        self.server: ServerProcess | None = None
        self.url = ""

    def start(self) -> None:
        from conduit.targets.processes import listening_socket

        listener = listening_socket(0)
        command = [sys.executable, "-c", START_ROUTER, str(self.source), "--fd", str(listener.fileno()),
                   "--backend-file", str(self.backend_file)]
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}/predict"
        log = self.work / f"{self.label}.log"
        self.server = ServerProcess(command, dict(os.environ), log, pass_fds=(listener.fileno(),))
        self.server.start()
        listener.close()
        self.server.wait_ready(self.url.replace("/predict", "/readyz"))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.router_cost")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--router", type=Path, action="append", default=[], help="another router.py to compare")
    args = parser.parse_args(argv)
    import conduit.targets.router as current

    sources = {"router": Path(current.__file__), **{f"router:{p.stem}": p for p in args.router}}
    with tempfile.TemporaryDirectory(prefix="conduit-router-cost-") as folder:
        work = Path(folder)
        (work / "backend_app.py").write_text(BACKEND)
        port = free_port()
        backend = ServerProcess([sys.executable, "-m", "uvicorn", "backend_app:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--no-access-log", "--log-level", "warning"],
                                dict(os.environ), work / "backend.log", cwd=work)
        routers = [Router(label, source, work / "backend", work) for label, source in sources.items()]
        try:
            backend.start()
            backend.wait_ready(f"http://127.0.0.1:{port}/readyz")
            (work / "backend").write_text(f"{port}\n")
            for router in routers:
                router.start()
            rows = measure(f"http://127.0.0.1:{port}/predict", routers, args)
        finally:
            for router in routers:
                router.stop()
            backend.stop()
    print(f"{'path':24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'router CPU us/req':>18}")
    for label, (rps, p50, p99, cpu_us) in rows.items():
        print(f"{label:24} {rps:9.0f} {p50:8.3f} {p99:8.3f} {cpu_us:18.1f}")
    return 0


def measure(direct_url: str, routers: list[Router], args) -> dict:
    samples: dict[str, list] = {}
    targets = [("direct", direct_url, None)] + [(r.label, r.url, r.server.process.pid) for r in routers]
    for round_index in range(args.rounds):
        shift = round_index % len(targets)
        for label, url, pid in targets[shift:] + targets[:shift]:
            before = cpu_seconds(pid) if pid else 0.0
            result = run_wrk(url, b"[[5.1, 3.5, 1.4, 0.2]]", args.clients, args.seconds)
            cpu_us = (cpu_seconds(pid) - before) * 1e6 / max(result.requests, 1) if pid else 0.0
            samples.setdefault(label, []).append((result.rps, result.p50_ms, result.p99_ms, cpu_us))
            time.sleep(0.2)
    return {label: tuple(sorted(values)[len(values) // 2] for values in zip(*runs)) for label, runs in samples.items()}


if __name__ == "__main__":
    sys.exit(main())
