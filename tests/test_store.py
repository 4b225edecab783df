from __future__ import annotations

import sqlite3
import threading

import pytest

from conduit.store import DeploymentNotFound, Store


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    return Store()


def test_store_lives_in_conduit_home(store, tmp_path):
    assert store.path == tmp_path / "home" / "conduit.db"
    assert store.path.exists()


def test_revisions_number_per_name_and_track_state(store):
    store.ensure_deployment("iris", "/src/conduit.yaml")
    store.ensure_deployment("other")
    first = store.add_revision("iris", "iris:aaa", "ab" * 32)
    second = store.add_revision("iris", "iris:bbb", "ab" * 32, note="rollback to r1")
    other = store.add_revision("other", "other:ccc", "cd" * 32)
    assert (first.revision, second.revision, other.revision) == (1, 2, 1)
    assert first.state == "starting" and second.note == "rollback to r1"

    store.update_revision("iris", 1, state="serving", port=4000, pid=123, log_path="/x.log")
    assert store.serving("iris").revision == 1
    store.update_revision("iris", 2, state="serving")
    store.update_revision("iris", 1, state="archived")
    assert store.serving("iris").tag == "iris:bbb"
    assert [r.state for r in store.revisions("iris")] == ["archived", "serving"]
    assert store.revision("iris", 1).port == 4000


def test_unknown_state_and_column_are_refused(store):
    store.ensure_deployment("iris")
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    with pytest.raises(ValueError):
        store.update_revision("iris", 1, state="running")
    with pytest.raises(ValueError):
        store.update_revision("iris", 1, tag="iris:zzz")


def test_deployment_endpoint_and_removal(store):
    record = store.ensure_deployment("iris", "/src/conduit.yaml")
    assert record.endpoint is None
    store.update_deployment("iris", port=5123, router_pid=42)
    assert store.require("iris").endpoint == "http://127.0.0.1:5123/predict"
    assert store.ensure_deployment("iris").manifest_path == "/src/conduit.yaml"
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    store.remove_deployment("iris")
    assert store.revisions("iris") == []
    with pytest.raises(DeploymentNotFound, match="no deployment named 'iris'"):
        store.require("iris")


def test_store_has_no_column_for_a_plain_key(store):
    columns = set()
    with sqlite3.connect(store.path) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            columns |= {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    assert "key_sha256" in columns
    assert not {c for c in columns if "key" in c} - {"key_sha256", "key"}  # settings.key is a setting name


def test_concurrent_writers_get_distinct_revisions(store):
    store.ensure_deployment("iris")
    errors = []

    def add() -> None:
        try:
            for _ in range(10):
                Store(store.home).add_revision("iris", "iris:aaa", "ab" * 32)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [r.revision for r in store.revisions("iris")] == list(range(1, 41))
