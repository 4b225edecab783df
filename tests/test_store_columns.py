"""Each revision keeps the manifest it was applied from and the warnings apply printed; a
database made before those columns existed still opens, and gains them."""
from __future__ import annotations

import sqlite3

from conduit.store import Store

# The revisions table as the first release created it.
OLD_SCHEMA = """
CREATE TABLE deployments (name TEXT PRIMARY KEY, port INTEGER, router_pid INTEGER, manifest_path TEXT, created_at TEXT NOT NULL);
CREATE TABLE revisions (
    name TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    revision INTEGER NOT NULL, tag TEXT NOT NULL, port INTEGER, pid INTEGER,
    state TEXT NOT NULL CHECK (state IN ('starting', 'serving', 'archived', 'failed')),
    key_sha256 TEXT NOT NULL, log_path TEXT, note TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    PRIMARY KEY (name, revision)
);
INSERT INTO deployments VALUES ('iris', 4000, NULL, '/old/conduit.yaml', '2026-01-01T00:00:00+00:00');
INSERT INTO revisions VALUES ('iris', 1, 'iris:aaa', NULL, NULL, 'serving', 'ab', NULL, '', '2026-01-01T00:00:00+00:00');
"""


def test_a_revision_keeps_its_manifest_and_warnings(tmp_path):
    store = Store(tmp_path)
    store.ensure_deployment("iris", "/a/conduit.yaml")
    added = store.add_revision("iris", "iris:aaa", "ab" * 32, manifest_path="/a/conduit.yaml", warnings=["w1", "w2"])
    assert (added.manifest_path, added.warnings) == ("/a/conduit.yaml", ("w1", "w2"))
    updated = store.update_revision("iris", added.revision, warnings=["w3"])
    assert (updated.manifest_path, updated.warnings) == ("/a/conduit.yaml", ("w3",))


def test_a_database_from_before_the_columns_opens_and_gains_them(tmp_path):
    with sqlite3.connect(tmp_path / "conduit.db") as db:
        db.executescript(OLD_SCHEMA)
    store = Store(tmp_path)
    (old,) = store.revisions("iris")
    assert (old.tag, old.state, old.manifest_path, old.warnings) == ("iris:aaa", "serving", None, ())
    added = store.add_revision("iris", "iris:bbb", "cd" * 32, manifest_path="/b/conduit.yaml", warnings=["w"])
    assert (added.revision, added.manifest_path, added.warnings) == (2, "/b/conduit.yaml", ("w",))
    assert Store(tmp_path).revision("iris", 2) == added  # opening it again changes nothing
