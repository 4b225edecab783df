"""The prediction log: every answered request, written off the request path into SQLite.

Why SQLite (stdlib `sqlite3`, WAL mode): no new dependency in a bento; several worker processes
of a revision (and of the next revision, during a rollout) write one file at once, which WAL with
a busy timeout handles; a committed transaction survives a kill -9 of the writer; and the CLI
filters with indexed SQL instead of scanning files. One database per deployment,
`$CONDUIT_HOME/predictions/<name>.db`: it outlives redeploys, rollbacks and restarts, and `conduit
delete` keeps it (as it keeps logs); each record names its revision.

The request path makes one call, `PredictionLog.record(exchange, status, latency_s)`: a sampling
draw and a deque append. A writer thread per worker process wakes every FLUSH_INTERVAL_S, turns
what was queued into rows (one per data point, payloads as JSON) and inserts them in one
transaction; so a kill -9 loses at most what arrived since the last flush. It prunes by age and
size every PRUNE_INTERVAL_S. A write that fails (disk full, database locked) never reaches the
caller: the rows are dropped, counted, and the first failure is logged once.
"""
from __future__ import annotations

import atexit
import collections
import logging
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import orjson

from conduit.paths import conduit_home

logger = logging.getLogger("conduit.serving")

DATABASE_ENV = "CONDUIT_PREDICTIONS_DB"  # set by the local target; unset (kubernetes): no SQLite log
REVISION_ENV = "CONDUIT_REVISION"
FLUSH_INTERVAL_S = 0.2
PRUNE_INTERVAL_S = 30.0
BUSY_TIMEOUT_S = 5.0
# Queued requests past this are dropped (and counted): a stuck disk must not eat the memory.
MAX_PENDING = 100_000
PRUNE_TO = 0.9  # a log over max_mb is cut to this share of it, so pruning does not run every flush
_DUMP = orjson.OPT_SERIALIZE_NUMPY

COLUMNS = (
    "time", "deployment", "revision", "status", "run_id", "prediction_id", "point",
    "run_time_ms", "latency_ms", "input", "output", "error_type", "error_message",
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    time REAL NOT NULL,          -- unix seconds when the request arrived
    deployment TEXT NOT NULL,
    revision INTEGER,
    status INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    prediction_id TEXT,          -- NULL for a request answered with an error
    point INTEGER,               -- the data point's index in its request
    run_time_ms REAL,            -- model time
    latency_ms REAL NOT NULL,    -- the whole request, as the worker saw it
    input TEXT,                  -- JSON; NULL with payloads off
    output TEXT,
    error_type TEXT,
    error_message TEXT
);
CREATE INDEX IF NOT EXISTS predictions_time ON predictions (time);
CREATE INDEX IF NOT EXISTS predictions_run_id ON predictions (run_id);
CREATE INDEX IF NOT EXISTS predictions_prediction_id ON predictions (prediction_id);
"""
INSERT = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def database_path(name: str) -> Path:
    return conduit_home() / "predictions" / f"{name}.db"


def revision_env(name: str, revision: int) -> dict[str, str]:
    """What a served revision needs to know to write its deployment's log."""
    return {DATABASE_ENV: str(database_path(name)), REVISION_ENV: str(revision)}


def connect(path: Path) -> sqlite3.Connection:
    """The database, created private to its owner (SQLite gives its -wal and -shm files the
    database file's mode), in WAL mode so writers in several processes and readers coexist."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses no commit
    connection.executescript(SCHEMA)
    return connection


@dataclass
class Exchange:
    """What the handler learns about one request while answering it."""

    run_id: str
    arrived: float  # time.time()
    data: Optional[list] = None
    result: Optional[list] = None
    prediction_ids: Optional[list[str]] = None
    run_time_ms: Optional[float] = None
    error: Optional[dict] = None  # the error body's {"type", "message"}


def payload(value: Any) -> str:
    return orjson.dumps(value, option=_DUMP).decode()


def rows(exchange: Exchange, status: int, latency_ms: float, where: tuple[str, Optional[int]], payloads: bool) -> list[tuple]:
    """One row per data point of an answered request; one row for a request answered with an error."""
    deployment, revision = where
    head = (exchange.arrived, deployment, revision, status, exchange.run_id)
    error = exchange.error or {}
    if exchange.result is None or exchange.prediction_ids is None:
        data = payload(exchange.data) if payloads and exchange.data is not None else None
        return [(*head, None, None, exchange.run_time_ms, latency_ms, data, None, error.get("type"), error.get("message"))]
    data_points = exchange.data if exchange.data is not None and len(exchange.data) == len(exchange.result) else None
    found = []
    for point, (prediction_id, output) in enumerate(zip(exchange.prediction_ids, exchange.result)):
        given = data_points[point] if data_points is not None else exchange.data  # a pre hook may change the count
        inputs = (payload(given), payload(output)) if payloads else (None, None)
        found.append((*head, prediction_id, point, exchange.run_time_ms, latency_ms, *inputs, None, None))
    return found


class PredictionLog:
    """One per worker process. `record` is the request path's only call; the rest runs on the
    writer thread (`start`), which `close` flushes and ends."""

    def __init__(
        self,
        path: Path,
        deployment: str,
        revision: Optional[int],
        settings: Any,  # conduit.manifest.PredictionLog
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.path = Path(path)
        self.where = (deployment, revision)
        self.sample = settings.sample
        self.payloads = settings.payloads
        self.retention_s = settings.retention_days * 86400.0
        self.max_bytes = settings.max_mb * 1024 * 1024
        self.flush_interval_s = flush_interval_s
        self.pending: collections.deque = collections.deque()
        self.written = 0
        self.failed = 0  # rows a failed write lost
        self.dropped = 0  # requests not queued: the writer fell MAX_PENDING behind
        self._connection: Optional[sqlite3.Connection] = None
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._last_prune = 0.0
        self._write_lock = threading.Lock()  # close() may flush while the thread does

    # the request path

    def record(self, exchange: Exchange, status: int, latency_s: float) -> None:
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append((exchange, status, latency_s * 1000.0))

    # the writer thread

    def start(self) -> PredictionLog:
        """Start the writer (in the worker process: a thread does not survive a fork)."""
        self._thread = threading.Thread(target=self._run, name="conduit-prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        return self

    def _run(self) -> None:
        while not self._stopping.wait(self.flush_interval_s):
            self.flush()

    def close(self) -> None:
        """Write what is queued and stop; called on the worker's shutdown (and at exit)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.flush()
        with self._write_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def flush(self) -> int:
        """Insert what is queued in one transaction; returns the rows written."""
        with self._write_lock:
            batch = [self.pending.popleft() for _ in range(len(self.pending))]
            found = [
                row
                for exchange, status, latency_ms in batch
                for row in rows(exchange, status, latency_ms, self.where, self.payloads)
            ]
            written = self._write(found) if found else 0
            self._prune_now_and_then()
            return written

    def _write(self, found: list[tuple]) -> int:
        try:
            connection = self._connected()
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(INSERT, found)
        except (sqlite3.Error, OSError) as exc:
            self._failed(len(found), exc)
            return 0
        self.written += len(found)
        return len(found)

    def _connected(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect(self.path)
        return self._connection

    def _failed(self, count: int, exc: BaseException) -> None:
        if not self.failed:  # said once: a full disk would otherwise fill the log too
            logger.disabled = False  # see conduit.serving.handler.log_failure
            logger.error(
                "prediction log: writing %s failed (%s: %s); requests are still answered, "
                "their records are dropped and counted from now on", self.path, type(exc).__name__, exc,
            )
        self.failed += count

    def _prune_now_and_then(self) -> None:
        now = time.time()
        if now - self._last_prune >= PRUNE_INTERVAL_S:
            self._last_prune = now
            self.prune(now)

    def prune(self, now: Optional[float] = None) -> int:
        """Delete records older than the retention, then the oldest until the log fits max_mb.
        Freed pages are reused by later inserts, so the file stops growing at about max_mb."""
        now = time.time() if now is None else now
        try:
            connection = self._connected()
            with connection:
                deleted = connection.execute("DELETE FROM predictions WHERE time < ?", (now - self.retention_s,)).rowcount
                deleted += self._prune_size(connection)
        except (sqlite3.Error, OSError) as exc:
            self._failed(0, exc)
            return 0
        return deleted

    def _prune_size(self, connection: sqlite3.Connection) -> int:
        used = used_bytes(connection)
        if used <= self.max_bytes:
            return 0
        first, last = connection.execute("SELECT min(rowid), max(rowid) FROM predictions").fetchone()
        if first is None:
            return 0
        cut = first + int((last - first + 1) * (1 - PRUNE_TO * self.max_bytes / used))
        return connection.execute("DELETE FROM predictions WHERE rowid <= ?", (cut,)).rowcount


def used_bytes(connection: sqlite3.Connection) -> int:
    """Bytes the database's live pages hold (its file size less the free pages)."""
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    free = connection.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * connection.execute("PRAGMA page_size").fetchone()[0]


def open_for(manifest: Any) -> Optional[PredictionLog]:
    """This worker's log, started, when the target asked for one (DATABASE_ENV) and the manifest
    does not turn it off; else None and the handler records nothing."""
    settings = manifest.prediction_log_settings
    path = os.environ.get(DATABASE_ENV)
    if not path or not settings.enabled:
        return None
    revision = os.environ.get(REVISION_ENV)
    return PredictionLog(Path(path), manifest.name, int(revision) if revision else None, settings).start()
