"""The prediction log: every answered request, written off the request path into SQLite.

Why SQLite (stdlib `sqlite3`, WAL mode): no new dependency in a bento; several worker processes
of a revision (and of the next revision, during a rollout) write one file at once, which WAL with
a busy timeout handles; a committed transaction survives a kill -9 of the writer; and the CLI
filters with indexed SQL instead of scanning files. One database per deployment,
`$CONDUIT_HOME/predictions/<name>.db`: it outlives redeploys, rollbacks and restarts, and `conduit
delete` keeps it (as it keeps logs); each record names its revision.

The request path makes one call, `PredictionLog.record(exchange, status, latency_s)`: a sampling
draw and a deque append. A writer thread per worker process wakes every FLUSH_INTERVAL_S, turns
what was queued into rows (one per data point, payloads as JSON, each cut at MAX_PAYLOAD_BYTES)
and inserts them in transactions of at most ROWS_PER_TRANSACTION rows or BYTES_PER_TRANSACTION:
one huge request must not hold the write lock while the other workers' writes wait (SQLite has
one writer at a time). A locked write is retried; only rows still not written after
WRITE_ATTEMPTS are lost, counted, and said once in the log. A kill -9 loses at most what arrived
since the last flush.

The disk: after each transaction the writer stats the database and its -wal file; over max_mb
together, it deletes the oldest records, gives the freed pages back (incremental vacuum) and
truncates the WAL (`wal_checkpoint(TRUNCATE)`), which it also does every PRUNE_INTERVAL_S, with
the retention's deletes; `journal_size_limit` caps what a reset WAL keeps.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import orjson

from conduit.paths import conduit_home
from conduit.serving.contract import DUMP_OPTIONS

logger = logging.getLogger("conduit.serving")

DATABASE_ENV = "CONDUIT_PREDICTIONS_DB"  # set by the local target; unset (kubernetes): no SQLite log
REVISION_ENV = "CONDUIT_REVISION"
FLUSH_INTERVAL_S = 0.2
PRUNE_INTERVAL_S = 30.0
BUSY_TIMEOUT_S = 10.0
WRITE_ATTEMPTS = 3  # a transaction still locked after this many busy timeouts is lost
ROWS_PER_TRANSACTION = 500
BYTES_PER_TRANSACTION = 1024 * 1024
MAX_PAYLOAD_BYTES = 16 * 1024  # one data point's input or output, as JSON; more is cut
WAL_BYTES = 4 * 1024 * 1024  # a WAL past this is checkpointed and cut back (a quarter of a smaller max_mb)
PAGE_BYTES = 4096  # SQLite's default page size
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental
# Queued requests past this are dropped (and counted): a stuck disk must not eat the memory.
MAX_PENDING = 100_000
PRUNE_TO = 0.9  # a log over max_mb is cut to this share of it, so pruning does not run every flush

COLUMNS = (
    "time", "deployment", "revision", "status", "run_id", "prediction_id", "point",
    "run_time_ms", "latency_ms", "input", "output", "error_type", "error_message",
)
INPUT, OUTPUT = COLUMNS.index("input"), COLUMNS.index("output")  # the payloads: a row's big part
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


def connect(path: Path, wal_bytes: int = WAL_BYTES) -> sqlite3.Connection:
    """The database, created private to its owner (SQLite gives its -wal and -shm files the
    database file's mode), in WAL mode so writers in several processes and readers coexist."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    # Only a database with no table yet takes it; then pruned pages can go back to the disk.
    connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses no commit
    connection.execute(f"PRAGMA journal_size_limit={wal_bytes}")
    connection.execute(f"PRAGMA wal_autocheckpoint={max(16, wal_bytes // PAGE_BYTES)}")
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
    inputs: Any = None  # the first stage's pre hook's rows, when it has one (files become rows there)


def payload(value: Any) -> str:
    """JSON text, or a marker string saying how long it was when over MAX_PAYLOAD_BYTES."""
    text = orjson.dumps(value, option=DUMP_OPTIONS)
    if len(text) > MAX_PAYLOAD_BYTES:
        return orjson.dumps(f"[cut: {len(text)} bytes of JSON, over the {MAX_PAYLOAD_BYTES} a record keeps]").decode()
    return text.decode()


def data_points(exchange: Exchange) -> Optional[list]:
    """Each data point's input: the request's points, or where their count is not the result's
    (files only, or a pre hook that changed it) the rows the pre hook returned; None when neither
    fits, and each record keeps the whole request."""
    count = len(exchange.result or ())
    if exchange.data is not None and len(exchange.data) == count:
        return exchange.data
    found = hook_rows(exchange.inputs) if exchange.inputs is not None else None
    return found if found is not None and len(found) == count else None


def hook_rows(value: Any) -> Optional[list]:
    """A pre hook's output as JSON-ready rows (off the request path: the writer thread calls it)."""
    try:
        from conduit.runtimes.convert import to_rows

        if hasattr(value, "columns") and hasattr(value, "to_numpy"):  # a pandas DataFrame: its rows
            value = value.to_numpy()
        return to_rows(value)
    except Exception:  # noqa: BLE001 - a hook's output of any type conduit cannot show as rows: the request's data stands in
        return None


def rows(exchange: Exchange, status: int, latency_ms: float, where: tuple[str, Optional[int]], payloads: bool) -> list[tuple]:
    """One row per data point of an answered request; one row for a request answered with an error."""
    deployment, revision = where
    head = (exchange.arrived, deployment, revision, status, exchange.run_id)
    error = exchange.error or {}
    if exchange.result is None or exchange.prediction_ids is None:
        data = payload(exchange.data) if payloads and exchange.data is not None else None
        return [(*head, None, None, exchange.run_time_ms, latency_ms, data, None, error.get("type"), error.get("message"))]
    points = data_points(exchange) if payloads else None
    whole = payload(exchange.data) if payloads and points is None else None  # once, not once a point
    found = []
    for point, (prediction_id, output) in enumerate(zip(exchange.prediction_ids, exchange.result)):
        inputs = (payload(points[point]) if points is not None else whole, payload(output)) if payloads else (None, None)
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
        counted: Optional[Callable[[str, int], None]] = None,  # (outcome, rows): the /metrics counter
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
        self.counted = counted
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
            self._dropped()
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
        """Insert what is queued (in short transactions, see _write); returns the rows written."""
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
        """Insert in short transactions, each retried while the database is locked; after each,
        keep the files within max_mb."""
        written = 0
        for chunk in transactions(found):
            if not self._commit(chunk):
                continue
            written += len(chunk)
            self._count("written", len(chunk))
            self._fit()
        self.written += written
        return written

    def _commit(self, chunk: list[tuple]) -> bool:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                connection = self._connected()
                with connection:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.executemany(INSERT, chunk)
                return True
            except (sqlite3.Error, OSError) as exc:
                if attempt == WRITE_ATTEMPTS or not locked(exc):
                    self._failed(len(chunk), exc)
                    return False
        return False

    def _connected(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect(self.path, min(WAL_BYTES, self.max_bytes // 4))
        return self._connection

    def _failed(self, count: int, exc: BaseException) -> None:
        if not self.failed:  # said once: a full disk would otherwise fill the log too
            logger.disabled = False  # see conduit.serving.handler.log_failure
            logger.error(
                "prediction log: writing %s failed (%s: %s); requests are still answered, "
                "their records are dropped and counted from now on", self.path, type(exc).__name__, exc,
            )
        self.failed += count
        self._count("lost", count)

    def _dropped(self) -> None:
        if not self.dropped:
            logger.disabled = False
            logger.error(
                "prediction log: %s requests are waiting to be written to %s; requests are still "
                "answered, the records of new ones are dropped and counted until it catches up", MAX_PENDING, self.path,
            )
        self.dropped += 1
        self._count("dropped", 1)

    def _count(self, outcome: str, rows: int) -> None:
        if self.counted is not None and rows:
            self.counted(outcome, rows)

    def _prune_now_and_then(self) -> None:
        now = time.time()
        if now - self._last_prune >= PRUNE_INTERVAL_S:
            self._last_prune = now
            self.prune(now)

    def _fit(self) -> None:
        """Two stats per transaction: over max_mb (database and WAL together), prune now."""
        if disk_bytes(self.path) > self.max_bytes:
            self.prune()

    def prune(self, now: Optional[float] = None) -> int:
        """Delete records older than the retention, then the oldest until the log fits max_mb;
        give the freed pages back to the disk and truncate the WAL."""
        now = time.time() if now is None else now
        try:
            connection = self._connected()
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                deleted = connection.execute("DELETE FROM predictions WHERE time < ?", (now - self.retention_s,)).rowcount
                deleted += self._prune_size(connection)
            shrink(connection)
        except (sqlite3.Error, OSError) as exc:
            self._failed(0, exc)
            return 0
        return deleted

    def _prune_size(self, connection: sqlite3.Connection) -> int:
        used = used_bytes(connection)
        if used <= PRUNE_TO * self.max_bytes:  # what is over is the WAL or free pages: shrink() frees them
            return 0
        first, last = connection.execute("SELECT min(rowid), max(rowid) FROM predictions").fetchone()
        if first is None:
            return 0
        # Oldest by answer time, not by rowid: a big request's rows are written over many flushes,
        # interleaved with later requests' rows, which must outlive it.
        over = int((last - first + 1) * (1 - PRUNE_TO * self.max_bytes / used)) + 1
        oldest = "SELECT rowid FROM predictions ORDER BY time LIMIT ?"
        return connection.execute(f"DELETE FROM predictions WHERE rowid IN ({oldest})", (over,)).rowcount


def transactions(found: list[tuple]) -> Iterator[list[tuple]]:
    """The rows in chunks of at most ROWS_PER_TRANSACTION rows and about BYTES_PER_TRANSACTION."""
    chunk: list[tuple] = []
    size = 0
    for row in found:
        chunk.append(row)
        size += len(row[INPUT] or "") + len(row[OUTPUT] or "")  # the payloads: the rest is small
        if len(chunk) >= ROWS_PER_TRANSACTION or size >= BYTES_PER_TRANSACTION:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def locked(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another writer held the database past the busy timeout."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def shrink(connection: sqlite3.Connection) -> None:
    """Freed pages back to the disk, then the WAL copied into the database and truncated (a
    reader in the middle of a query may keep part of it until the next time)."""
    if connection.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
        connection.executescript("PRAGMA incremental_vacuum")  # execute() would free one page: a step each
    else:  # a log written before auto_vacuum was set: rewritten once, incremental from then on
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        connection.execute("VACUUM")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def file_bytes(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def wal_bytes(path: Path) -> int:
    return file_bytes(path.with_name(path.name + "-wal"))


def disk_bytes(path: Path) -> int:
    """What the log takes on the disk: the database and its write-ahead log."""
    return file_bytes(path) + wal_bytes(path)


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
    from conduit.serving.metrics import predict_metrics

    revision = os.environ.get(REVISION_ENV)
    metrics = predict_metrics()
    counted = metrics.count_log_records if metrics is not None else None
    return PredictionLog(Path(path), manifest.name, int(revision) if revision else None, settings, counted=counted).start()
