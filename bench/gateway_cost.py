"""`python -m bench.gateway_cost`: what the gateway's proxy core (conduit.targets.local.proxy) adds.

Starts a minimal backend (a raw ASGI app under uvicorn answering a fixed JSON body: cheap, so the
proxy's share shows) and a gateway process running `proxy.serve` with a handler shaped like the gateway's (the
deployment from `/v1/<project>/<name>/predict`, one replica), then loads the backend directly and
through the gateway with wrk, interleaved: sequentially (one client) and with 32 clients. Prints
req/s, p50, p99, the gateway's CPU per request, and the ratios the targets are stated in:
throughput at c32 through the gateway / direct (target >= 0.9) and the p50 it adds at c1 (<= 0.2 ms).

    python -m bench.gateway_cost [--seconds 3] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.load import run_wrk
from bench.servers import ServerProcess, free_port, tree_cpu_seconds

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

GATEWAY = '''
import socket, sys
import uvloop
from conduit.targets.local import proxy

port, replica = int(sys.argv[1]), int(sys.argv[2])
ready = proxy.Answer(200, b'{"ready": true}')


def finished(ok):
    pass


async def handler(request):
    parts = request.path.split("/")
    if len(parts) == 5 and parts[1] == "v1" and parts[4] == "predict":
        return proxy.Forward(replica, "/predict", finished)
    return ready


uvloop.run(proxy.serve(socket.create_server(("127.0.0.1", port), backlog=1024), handler))
'''
BODY = b"[[5.1, 3.5, 1.4, 0.2]]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_cost")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conduit-gateway-cost-") as folder:
        work = Path(folder)
        (work / "backend_app.py").write_text(BACKEND)
        backend_port, gateway_port = free_port(), free_port()
        backend = ServerProcess([sys.executable, "-m", "uvicorn", "backend_app:app", "--host", "127.0.0.1",
                                 "--port", str(backend_port), "--no-access-log", "--log-level", "warning"],
                                dict(os.environ), work / "backend.log", cwd=work)
        gateway = ServerProcess([sys.executable, "-c", GATEWAY, str(gateway_port), str(backend_port)],
                                dict(os.environ), work / "gateway.log")
        try:
            for server, port in ((backend, backend_port), (gateway, gateway_port)):
                server.start()
                server.wait_ready(f"http://127.0.0.1:{port}/readyz")
            targets = {"direct": (f"http://127.0.0.1:{backend_port}/predict", None),
                       "gateway": (f"http://127.0.0.1:{gateway_port}/v1/default/bench/predict", gateway.process.pid)}
            rows = {clients: measure(targets, clients, args) for clients in (1, 32)}
        finally:
            gateway.stop()
            backend.stop()
    report(rows)
    return 0


def measure(targets: dict, clients: int, args) -> dict:
    """The median of each figure over the rounds; the order of targets rotates per round."""
    samples: dict[str, list] = {}
    labels = list(targets)
    for round_index in range(args.rounds):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            url, pid = targets[label]
            before = tree_cpu_seconds([pid]) if pid else 0.0
            result = run_wrk(url, BODY, clients, args.seconds)
            cpu_us = (tree_cpu_seconds([pid]) - before) * 1e6 / max(result.requests, 1) if pid else 0.0
            samples.setdefault(label, []).append((result.rps, result.p50_ms, result.p99_ms, cpu_us, result.errors))
            time.sleep(0.2)
    return {label: tuple(sorted(values)[len(values) // 2] for values in zip(*runs)) for label, runs in samples.items()}


def report(rows: dict) -> None:
    print(f"{'path':10} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'gateway CPU us/req':>19} {'errors':>6}")
    for clients, by_label in rows.items():
        for label, (rps, p50, p99, cpu_us, errors) in by_label.items():
            print(f"{label:10} {clients:7} {rps:9.0f} {p50:8.3f} {p99:8.3f} {cpu_us:19.1f} {errors:6}")
    c32, c1 = rows[32], rows[1]
    print(f"c32 throughput gateway/direct: {c32['gateway'][0] / c32['direct'][0]:.3f}  (target >= 0.9)")
    print(f"c1 p50 added by the gateway:   {c1['gateway'][1] - c1['direct'][1]:.3f} ms  (target <= 0.2 ms)")


if __name__ == "__main__":
    sys.exit(main())
