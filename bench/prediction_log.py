"""`python -m bench.prediction_log`: what the prediction log costs, logging on against off, c32.

Applies the iris model twice into one temporary CONDUIT_HOME, the same manifest but for
`prediction_log` (the default, every request with its payloads, against `enabled: false`), and
loads both with wrk at 32 clients, interleaved (on, off, off, on, ...). Prints the median req/s,
p50 and p99 of each and the ratio on / off (the issue's bar: at least 0.9), and then how many
records the logged deployment holds against how many answers its server gave (wrk counts only
the answers it read before its time was up, so records may be a few more, never fewer).

    python -m bench.prediction_log [--seconds 5] [--rounds 3] [--clients 32]
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.conduit_adapter import ConduitEndpoint
from bench.load import run_wrk
from bench.models import make_models


class LoggedEndpoint(ConduitEndpoint):
    """conduit with the manifest's `prediction_log` set (None: left out, the default)."""

    def __init__(self, model, work: Path, name: str, prediction_log: dict | None) -> None:
        super().__init__(model, work, name=name)
        self.prediction_log = prediction_log

    def manifest_document(self) -> dict:
        document = super().manifest_document()
        if self.prediction_log is not None:
            document["prediction_log"] = self.prediction_log
        return document

    def records(self) -> int:
        database = self.home / "predictions" / f"{self.deploy_name}.db"
        if not database.is_file():
            return 0
        with sqlite3.connect(database, timeout=10) as connection:
            return connection.execute("SELECT count(*) FROM predictions").fetchone()[0]


def median(rows: list[dict], key: str) -> float:
    return round(statistics.median(row[key] for row in rows), 3)


def measure(endpoints: list[LoggedEndpoint], clients: int, seconds: float, rounds: int) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {endpoint.name: [] for endpoint in endpoints}
    for number in range(rounds):
        order = endpoints if number % 2 == 0 else endpoints[::-1]
        for endpoint in order:
            result = run_wrk(endpoint.url, endpoint.body, clients, seconds, endpoint.auth)
            runs[endpoint.name].append(result.to_json())
    return runs


def report(runs: dict[str, list[dict]], on: LoggedEndpoint) -> dict:
    summary = {name: {key: median(rows, key) for key in ("rps", "p50_ms", "p99_ms")} for name, rows in runs.items()}
    answered = sum(row["requests"] for row in runs[on.name]) + 1  # + the adapter's first prediction
    time.sleep(1.0)  # the writers flush every 0.2 s
    summary["ratio_rps_on_over_off"] = round(summary["log-on"]["rps"] / summary["log-off"]["rps"], 3)
    summary["log_on_answers_counted_by_wrk"] = answered
    summary["log_on_records"] = on.records()
    summary["errors"] = sum(row["errors"] for rows in runs.values() for row in rows)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prediction_log", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conduit-bench-log-") as folder:
        work = Path(folder)
        model = make_models(["iris"], work / "models")["iris"]
        on = LoggedEndpoint(model, work, "log-on", None)
        off = LoggedEndpoint(model, work, "log-off", {"enabled": False})
        try:
            for endpoint in (on, off):
                endpoint.start()
            runs = measure([on, off], args.clients, args.seconds, args.rounds)
            summary = report(runs, on)
        finally:
            for endpoint in (on, off):
                endpoint.stop()
    for name in ("log-on", "log-off"):
        row = summary[name]
        print(f"{name:8}  c{args.clients}  {row['rps']:>9.1f} req/s  p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms")
    print(f"ratio on/off (req/s): {summary['ratio_rps_on_over_off']:.3f}")
    print(f"records {summary['log_on_records']} for {summary['log_on_answers_counted_by_wrk']} answers wrk read; errors {summary['errors']}")
    print("BENCH_JSON " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
