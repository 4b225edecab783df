"""Soak: many connections for a while against one iris deployment, counting every error (issue 16).

    python -m bench.soak                  # 200 connections for 60 s (wrk, loopback only)
    python -m bench.soak --connections 50 --seconds 10

It deploys iris with `conduit apply` into a temporary CONDUIT_HOME (as the bench does), runs wrk
against the gateway's endpoint, then deletes the deployment; it stops by itself. Errors are wrk's:
non-2xx answers, and connect, read, write and timeout failures. It prints one summary line and
exits 1 when there was any error. Not a test: it takes a minute of both cores.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.conduit_adapter import ConduitEndpoint
from bench.load import run_wrk
from bench.models import make_iris


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200, help="concurrent connections (default 200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    return parser.parse_args(argv)


def soak(connections: int, seconds: float, work: Path) -> dict:
    endpoint = ConduitEndpoint(make_iris(work), work, name="conduit-soak")
    endpoint.start()
    try:
        assert endpoint.url.startswith("http://127.0.0.1:"), endpoint.url  # loopback only
        result = run_wrk(endpoint.url, endpoint.body, connections, seconds, auth=endpoint.auth)
    finally:
        endpoint.stop()
    return result.to_json()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="conduit-soak-") as work:
        result = soak(args.connections, args.seconds, Path(work))
    print(
        f"soak: {result['clients']} connections for {result['seconds']} s: {result['requests']} requests, "
        f"{result['rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}"
    )
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
