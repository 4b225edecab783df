"""The deployment store: one SQLite file, `$CONDUIT_HOME/conduit.db`.

A deployment is a name and a list of revisions. A revision is one served Bento: its tag, its
state, the sha256 of the API key it accepts (the plain API key is never stored), how the gateway
serves it (`settings`: project, scaling, memory, interpreter; see `conduit.targets.local.settings`),
the manifest it was applied from (so `status` after a rollback shows the one that built the
serving Bento) and the warnings its apply printed (fields the target does not honour, see
`conduit.targets.honoured`). Databases made before those columns get them on opening. (The
`port`, `pid` and `router_pid` columns are what a revision ran with before the gateway; unused.)

Revision states: `starting` (recorded by apply; the gateway starts it), `serving` (the one the
gateway routes to), `archived` (replaced or rolled back from; its replicas stopped once their
requests were answered), `failed` (never became ready, or its apply was interrupted).
They form one state machine (`TRANSITIONS`), and the store applies each move in one transaction
(`promote`, `fail`), so an interrupted command can never leave two revisions serving: a partial
unique index makes the database itself refuse a second serving revision of a name. A database
made before that index gets it on opening, after any surplus serving rows are archived.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from conduit.errors import ConduitError
from conduit.paths import conduit_home, make_private

# The revision lifecycle: where each state may go. `serving -> archived` happens only inside
# `promote`, in the same transaction that makes the next revision serve.
TRANSITIONS = {"starting": ("serving", "failed"), "serving": ("archived",), "archived": (), "failed": ()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY,
    port INTEGER,
    router_pid INTEGER,
    manifest_path TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    name TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    revision INTEGER NOT NULL,
    tag TEXT NOT NULL,
    port INTEGER,
    pid INTEGER,
    state TEXT NOT NULL CHECK (state IN ('starting', 'serving', 'archived', 'failed')),
    key_sha256 TEXT NOT NULL,
    log_path TEXT,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    manifest_path TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    settings TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (name, revision)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# At most one serving revision per name, enforced by SQLite (created after `_archive_surplus_serving`).
_ONE_SERVING_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS one_serving_revision ON revisions (name) WHERE state = 'serving'"
# Columns added after the first release: (table, column, declaration), added where missing.
_ADDED_COLUMNS = (
    ("revisions", "manifest_path", "TEXT"),
    ("revisions", "warnings", "TEXT NOT NULL DEFAULT '[]'"),
    ("revisions", "settings", "TEXT NOT NULL DEFAULT '{}'"),
)


class DeploymentNotFound(ConduitError):
    http_status = 404
    type = "not_found"


class InvalidTransition(ConduitError):
    """A revision state change the lifecycle does not allow (a bug, or a concurrent command)."""


@dataclass(frozen=True)
class Revision:
    name: str
    revision: int
    tag: str
    port: Optional[int]
    pid: Optional[int]
    state: str
    key_sha256: str
    log_path: Optional[str]
    note: str
    created_at: str
    manifest_path: Optional[str] = None
    warnings: tuple[str, ...] = ()
    # How the gateway serves it (`conduit.targets.local.settings`): project, scaling, memory,
    # interpreter, ready timeout. Read from the manifest at apply; {} in rows made before.
    settings: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Revision:
        fields = dict(row)
        settings = json.loads(fields.get("settings") or "{}")
        return cls(**{**fields, "warnings": tuple(json.loads(fields["warnings"])), "settings": settings})


@dataclass(frozen=True)
class DeploymentRecord:
    name: str
    port: Optional[int]
    router_pid: Optional[int]
    manifest_path: Optional[str]
    created_at: str


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Store:
    """Deployments and revisions under one CONDUIT_HOME. Every call opens its own short
    transaction, so several conduit commands may use the store at once."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else conduit_home()
        make_private(self.home)  # the key's hash lives here (conduit.paths: private state)
        self.path = self.home / "conduit.db"
        # Created 0600 whatever this process's umask: SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
            _add_one_serving_index(db)
        finally:
            db.close()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    @contextlib.contextmanager
    def lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        """Serialise lifecycle commands (apply, rollback, delete) on one deployment name; yields
        whether it holds the lock. With `wait=False` it yields False at once while another command
        holds it (`status` reconciles only then: a revision `starting` under a held lock is being
        started, not left behind). The OS drops the lock of a command that was killed."""
        locks = self.home / "locks"
        locks.mkdir(exist_ok=True)
        with open(locks / f"{name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # deployments

    def deployment(self, name: str) -> Optional[DeploymentRecord]:
        with self._db() as db:
            row = db.execute("SELECT * FROM deployments WHERE name = ?", (name,)).fetchone()
        return DeploymentRecord(**dict(row)) if row else None

    def require(self, name: str) -> DeploymentRecord:
        record = self.deployment(name)
        if record is None:
            known = ", ".join(d.name for d in self.deployments()) or "none yet"
            raise DeploymentNotFound(f"no deployment named {name!r} (deployments: {known})")
        return record

    def deployments(self) -> list[DeploymentRecord]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM deployments ORDER BY name").fetchall()
        return [DeploymentRecord(**dict(row)) for row in rows]

    def ensure_deployment(self, name: str, manifest_path: str | None = None) -> DeploymentRecord:
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO deployments (name, manifest_path, created_at) VALUES (?, ?, ?)",
                (name, manifest_path, now()),
            )
            if manifest_path:
                db.execute("UPDATE deployments SET manifest_path = ? WHERE name = ?", (manifest_path, name))
        return self.require(name)

    def remove_deployment(self, name: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM deployments WHERE name = ?", (name,))

    # revisions

    def revisions(self, name: str) -> list[Revision]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM revisions WHERE name = ? ORDER BY revision", (name,)).fetchall()
        return [Revision.from_row(row) for row in rows]

    def revision(self, name: str, number: int) -> Optional[Revision]:
        return next((r for r in self.revisions(name) if r.revision == number), None)

    def serving(self, name: str) -> Optional[Revision]:
        """The revision the endpoint points at, if any."""
        return next((r for r in reversed(self.revisions(name)) if r.state == "serving"), None)

    def add_revision(
        self,
        name: str,
        tag: str,
        key_sha256: str,
        note: str = "",
        manifest_path: Optional[str] = None,
        warnings: Sequence[str] = (),
        settings: Optional[dict] = None,
    ) -> Revision:
        with self._db() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(revision), 0) FROM revisions WHERE name = ?", (name,)).fetchone()
            db.execute(
                "INSERT INTO revisions (name, revision, tag, state, key_sha256, note, created_at, manifest_path, warnings,"
                " settings) VALUES (?, ?, ?, 'starting', ?, ?, ?, ?, ?, ?)",
                (name, last + 1, tag, key_sha256, note, now(), manifest_path, json.dumps(list(warnings)),
                 json.dumps(settings or {})),
            )
        return self.revision(name, last + 1)  # type: ignore[return-value]

    def update_revision(self, name: str, number: int, **fields: object) -> Revision:
        """Change a revision's details; its state changes only through `promote` and `fail`."""
        if "state" in fields:
            raise ValueError("a revision's state changes only through Store.promote and Store.fail")
        allowed = {"port", "pid", "log_path", "note", "warnings"}
        if "warnings" in fields:
            fields = {**fields, "warnings": json.dumps(list(fields["warnings"]))}  # type: ignore[call-overload]
        self._update("revisions", "name = ? AND revision = ?", (name, number), fields, allowed)
        return self.revision(name, number)  # type: ignore[return-value]

    # the lifecycle's moves, each one transaction

    def promote(self, name: str, number: int) -> Revision:
        """Make a starting revision the serving one, archiving the one it replaces, atomically."""
        with self._db() as db:
            _require_state(db, name, number, "serving")
            db.execute("UPDATE revisions SET state = 'archived' WHERE name = ? AND state = 'serving'", (name,))
            db.execute("UPDATE revisions SET state = 'serving' WHERE name = ? AND revision = ?", (name, number))
        return self.revision(name, number)  # type: ignore[return-value]

    def fail(self, name: str, number: int, note: str) -> Revision:
        """Record that a starting revision never became the serving one, and why."""
        with self._db() as db:
            _require_state(db, name, number, "failed")
            db.execute(
                "UPDATE revisions SET state = 'failed', note = ? WHERE name = ? AND revision = ?", (note, name, number)
            )
        return self.revision(name, number)  # type: ignore[return-value]

    def fail_if_starting(self, name: str, number: int, note: str) -> bool:
        """`fail` unless the revision already moved on (the gateway promoted or failed it first);
        whether it was this call that failed it."""
        with self._db() as db:
            row = db.execute("SELECT state FROM revisions WHERE name = ? AND revision = ?", (name, number)).fetchone()
            if row is None or row[0] != "starting":
                return False
            db.execute(
                "UPDATE revisions SET state = 'failed', note = ? WHERE name = ? AND revision = ?", (note, name, number)
            )
        return True

    def live_revisions(self) -> list[Revision]:
        """Every revision the gateway serves or starts, of every deployment (one query)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM revisions WHERE state IN ('starting', 'serving') ORDER BY name, revision"
            ).fetchall()
        return [Revision.from_row(row) for row in rows]

    # settings (the CONDUIT_HOME's default API key hash lives here)

    def setting(self, key: str) -> Optional[str]:
        with self._db() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def _update(self, table: str, where: str, args: tuple, fields: dict, allowed: set) -> None:
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} in {table}")
        assignments = ", ".join(f"{column} = ?" for column in fields)
        with self._db() as db:
            db.execute(f"UPDATE {table} SET {assignments} WHERE {where}", (*fields.values(), *args))


def _require_state(db: sqlite3.Connection, name: str, number: int, to: str) -> None:
    """Refuse a move the lifecycle does not allow (inside the move's own transaction)."""
    row = db.execute("SELECT state FROM revisions WHERE name = ? AND revision = ?", (name, number)).fetchone()
    if row is None:
        raise InvalidTransition(f"{name} has no revision {number}")
    if to not in TRANSITIONS[row[0]]:
        raise InvalidTransition(f"revision {number} of {name} is {row[0]}; it cannot become {to}")


def _add_one_serving_index(db: sqlite3.Connection) -> None:
    """Give a database the one-serving-revision index, archiving first what would violate it
    (all but the newest serving revision of a name), in one transaction."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'one_serving_revision'").fetchone():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "UPDATE revisions SET state = 'archived', note = 'archived on opening: a newer revision was also serving'"
            " WHERE state = 'serving' AND revision < (SELECT MAX(revision) FROM revisions AS newer"
            " WHERE newer.name = revisions.name AND newer.state = 'serving')"
        )
        db.execute(_ONE_SERVING_INDEX)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a database made by an earlier conduit up to the current columns."""
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column in present:
            continue
        try:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        except sqlite3.OperationalError as exc:  # another process opening the store added it first
            if "duplicate column" not in str(exc):
                raise
