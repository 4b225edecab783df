"""Reading the prediction log back (`conduit predictions`): filters, records as plain dicts, export.

The served side writes it (`conduit.serving.prediction_log`, which owns the table); this side only
reads, with SQL over the indexed columns, so a filter by id or time costs the same on a large log.
Times are unix seconds in the database and ISO 8601 UTC (`...Z`) in every record shown or exported;
`--since`/`--until` take ISO times (without a zone: UTC) or an age such as `10m`, `2h`, `7d`.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from conduit.errors import ConduitError, UsageError
from conduit.manifest.names import name_problem
from conduit.serving.prediction_log import COLUMNS, database_path

AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EXPORT_FORMATS = (".jsonl", ".parquet")


@dataclass(frozen=True)
class Query:
    prediction_id: Optional[str] = None
    run_id: Optional[str] = None
    since: Optional[float] = None  # unix seconds
    until: Optional[float] = None
    status: Optional[int] = None
    limit: Optional[int] = None  # the newest `limit` records; None: all

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters."""
        tests = [
            ("prediction_id = ?", self.prediction_id),
            ("run_id = ?", self.run_id),
            ("time >= ?", self.since),
            ("time <= ?", self.until),
            ("status = ?", self.status),
        ]
        used = [(test, value) for test, value in tests if value is not None]
        condition = " AND ".join(test for test, _ in used) or "1"
        return condition, [value for _, value in used]


def parse_time(text: str, now: Optional[float] = None) -> float:
    """An ISO time (no zone: UTC) or an age before now (`90s`, `10m`, `2h`, `7d`) -> unix seconds."""
    age = AGE.match(text.strip())
    if age:
        return (time.time() if now is None else now) - float(age.group(1)) * SECONDS[age.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is not a time: write an ISO time (2026-12-01T20:00:00) or an age (10m, 2h, 7d)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_log(name: str) -> sqlite3.Connection:
    """The deployment's log; NAME must be a deployment name, so it can name no other file."""
    problem = name_problem(name)
    if problem is not None:
        raise UsageError(f"{problem}: give the name of a deployment (conduit ls lists them)")
    path = database_path(name)
    if not path.is_file():
        raise ConduitError(f"{name} has no prediction log yet ({path}): apply it and send a request first")
    return sqlite3.connect(path, timeout=5.0)


def select(connection: sqlite3.Connection, query: Query) -> list[dict]:
    """The matching records, oldest first (with a limit: the newest `limit` of them)."""
    condition, parameters = query.where()
    sql = f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE {condition} ORDER BY time DESC, rowid DESC"
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    found = [record(row) for row in connection.execute(sql, parameters)]
    return found[::-1]


def count(connection: sqlite3.Connection, query: Query) -> int:
    condition, parameters = query.where()
    return connection.execute(f"SELECT count(*) FROM predictions WHERE {condition}", parameters).fetchone()[0]


def record(row: tuple) -> dict:
    """A row as shown and exported: ISO time, payloads parsed, the error as {type, message}."""
    values = dict(zip(COLUMNS, row))
    error = {"type": values.pop("error_type"), "message": values.pop("error_message")}
    values["time"] = iso(values["time"])
    for key in ("input", "output"):
        values[key] = json.loads(values[key]) if values[key] is not None else None
    values["error"] = error if error["type"] is not None else None
    return values


def export(records: list[dict], target: Path) -> None:
    """JSON Lines (`.jsonl`) or Parquet (`.parquet`, with pyarrow; payloads as JSON text there,
    since inputs of different shapes share no column type)."""
    suffix = target.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise UsageError(f"cannot export to {target.name}: name a .jsonl or .parquet file")
    if suffix == ".jsonl":
        target.write_text("".join(json.dumps(item) + "\n" for item in records), encoding="utf-8")
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("exporting Parquet needs pyarrow: pip install pyarrow, or export to a .jsonl file") from None
    flat = [{**item, **{key: _as_text(item[key]) for key in ("input", "output", "error")}} for item in records]
    pq.write_table(pa.Table.from_pylist(flat, schema=_parquet_schema(pa)), target)


def _as_text(value: Any) -> Optional[str]:
    return None if value is None else json.dumps(value)


def _parquet_schema(pa: Any) -> Any:
    text, number, whole = pa.string(), pa.float64(), pa.int64()
    types = {"revision": whole, "status": whole, "point": whole, "run_time_ms": number, "latency_ms": number}
    names = [column for column in COLUMNS if not column.startswith("error_")] + ["error"]
    return pa.schema([(name, types.get(name, text)) for name in names])
