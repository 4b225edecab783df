"""The deployment store: one SQLite file, `$CONDUIT_HOME/conduit.db`.

A deployment is a name with a stable port (its front router, see `targets/router.py`) and a list
of revisions. A revision is one served Bento: its tag, the backend port and supervisor pid it ran
with, its state, and the sha256 of the API key it accepts. The plain API key is never stored.

A revision also keeps the manifest it was applied from (so `status` after a rollback shows the
one that built the serving Bento) and the warnings its apply printed (fields the target does not
honour, see `conduit.targets.honoured`). Databases made before those columns get them on opening.

Revision states: `starting` (launched, not yet ready), `serving` (the one the router points at),
`archived` (replaced or rolled back from; its process stopped), `failed` (never became ready).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from conduit.errors import ConduitError
from conduit.paths import conduit_home

STATES = ("starting", "serving", "archived", "failed")

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
    PRIMARY KEY (name, revision)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added after the first release: (table, column, declaration), added where missing.
_ADDED_COLUMNS = (
    ("revisions", "manifest_path", "TEXT"),
    ("revisions", "warnings", "TEXT NOT NULL DEFAULT '[]'"),
)


class DeploymentNotFound(ConduitError):
    http_status = 404
    type = "not_found"


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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Revision:
        fields = dict(row)
        return cls(**{**fields, "warnings": tuple(json.loads(fields["warnings"]))})


@dataclass(frozen=True)
class DeploymentRecord:
    name: str
    port: Optional[int]
    router_pid: Optional[int]
    manifest_path: Optional[str]
    created_at: str

    @property
    def endpoint(self) -> Optional[str]:
        """The stable endpoint (the router's port); None until a first revision served."""
        return f"http://127.0.0.1:{self.port}/predict" if self.port else None


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Store:
    """Deployments and revisions under one CONDUIT_HOME. Every call opens its own short
    transaction, so several conduit commands may use the store at once."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else conduit_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = self.home / "conduit.db"
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
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
    def lock(self, name: str) -> Iterator[None]:
        """Serialise lifecycle commands (apply, rollback, delete) on one deployment name."""
        locks = self.home / "locks"
        locks.mkdir(exist_ok=True)
        with open(locks / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
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

    def update_deployment(self, name: str, **fields: object) -> None:
        self._update("deployments", "name = ?", (name,), fields, {"port", "router_pid", "manifest_path"})

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
    ) -> Revision:
        with self._db() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(revision), 0) FROM revisions WHERE name = ?", (name,)).fetchone()
            db.execute(
                "INSERT INTO revisions (name, revision, tag, state, key_sha256, note, created_at, manifest_path, warnings)"
                " VALUES (?, ?, ?, 'starting', ?, ?, ?, ?, ?)",
                (name, last + 1, tag, key_sha256, note, now(), manifest_path, json.dumps(list(warnings))),
            )
        return self.revision(name, last + 1)  # type: ignore[return-value]

    def update_revision(self, name: str, number: int, **fields: object) -> Revision:
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown revision state {fields['state']!r}")
        allowed = {"port", "pid", "state", "log_path", "note", "warnings"}
        if "warnings" in fields:
            fields = {**fields, "warnings": json.dumps(list(fields["warnings"]))}  # type: ignore[call-overload]
        self._update("revisions", "name = ? AND revision = ?", (name, number), fields, allowed)
        return self.revision(name, number)  # type: ignore[return-value]

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
