"""The live charts' numbers, from the prediction log: per time bucket over the last minutes,
requests per second, latency percentiles (p50, p95, p99) and errors (4xx, 5xx).

One request is one `run_id` (its rows are its data points, with the same latency and status), so
the query groups by it. Bounded: only the window's rows, at most MAX_REQUESTS requests.
"""
from __future__ import annotations

import math
import sqlite3
import time
from typing import Optional

from conduit.serving.prediction_log import database_path

WINDOW_S = 15 * 60
BUCKET_S = 15
MAX_REQUESTS = 100_000
PERCENTILES = (50, 95, 99)

REQUESTS_SQL = (
    "SELECT MIN(time), MAX(latency_ms), MAX(status) FROM predictions WHERE time >= ?"
    f" GROUP BY run_id ORDER BY MIN(time) DESC LIMIT {MAX_REQUESTS}"
)


def percentile(ordered: list[float], share: float) -> Optional[float]:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def read(name: str, sql: str, parameters: tuple = ()) -> list[tuple]:
    """Rows of a query on the deployment's prediction log, opened read-only; none without a log
    (or its table) yet."""
    path = database_path(name)
    if not path.is_file():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        return connection.execute(sql, parameters).fetchall()
    except sqlite3.OperationalError:  # the writer has not made its table yet
        return []
    finally:
        connection.close()


def requests_since(name: str, since: float) -> list[tuple[float, float, int]]:
    """(arrived, latency_ms, status) of each request since `since`."""
    return read(name, REQUESTS_SQL, (since,))


def last_request(name: str) -> Optional[float]:
    """When the newest logged request arrived (unix seconds), or None."""
    found = read(name, "SELECT MAX(time) FROM predictions")
    return found[0][0] if found else None


def series(name: str, now: Optional[float] = None) -> dict:
    """The charts' data: bucket start times (unix seconds) and one list per line."""
    now = time.time() if now is None else now
    first = (math.floor(now / BUCKET_S) + 1) * BUCKET_S - WINDOW_S
    buckets: list[list[tuple[float, int]]] = [[] for _ in range(WINDOW_S // BUCKET_S)]
    for arrived, latency_ms, status in requests_since(name, first):
        index = int((arrived - first) // BUCKET_S)
        if 0 <= index < len(buckets):
            buckets[index].append((latency_ms, status))
    return {"times": [first + i * BUCKET_S for i in range(len(buckets))], **bucket_lines(buckets)}


def bucket_lines(buckets: list[list[tuple[float, int]]]) -> dict:
    lines: dict = {"rate": [round(len(b) / BUCKET_S, 3) for b in buckets]}
    ordered = [sorted(latency for latency, _ in b) for b in buckets]
    for share in PERCENTILES:
        lines[f"p{share}"] = [percentile(latencies, share) for latencies in ordered]
    lines["errors_4xx"] = [sum(1 for _, status in b if 400 <= status < 500) for b in buckets]
    lines["errors_5xx"] = [sum(1 for _, status in b if status >= 500) for b in buckets]
    return lines
