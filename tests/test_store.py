from __future__ import annotations

import sqlite3
import threading

import pytest

from conduit.store import DeploymentNotFound, InvalidTransition, Store


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

    store.update_revision("iris", 1, port=4000, pid=123, log_path="/x.log")
    store.promote("iris", 1)
    assert store.serving("iris").revision == 1
    store.promote("iris", 2)  # the one it replaces is archived in the same step
    assert store.serving("iris").tag == "iris:bbb"
    assert [r.state for r in store.revisions("iris")] == ["archived", "serving"]
    assert store.revision("iris", 1).port == 4000


def test_states_change_only_by_the_lifecycle_moves(store):
    store.ensure_deployment("iris")
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    with pytest.raises(ValueError, match="only through Store.promote and Store.fail"):
        store.update_revision("iris", 1, state="serving")
    with pytest.raises(ValueError):
        store.update_revision("iris", 1, tag="iris:zzz")
    store.fail("iris", 1, "interrupted")
    assert (store.revision("iris", 1).state, store.revision("iris", 1).note) == ("failed", "interrupted")
    with pytest.raises(InvalidTransition, match="revision 1 of iris is failed; it cannot become serving"):
        store.promote("iris", 1)
    with pytest.raises(InvalidTransition, match="iris has no revision 7"):
        store.fail("iris", 7, "x")


def test_the_database_itself_refuses_two_serving_revisions_of_a_name(store):
    store.ensure_deployment("iris")
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    store.add_revision("iris", "iris:bbb", "ab" * 32)
    store.promote("iris", 1)
    with sqlite3.connect(store.path) as db, pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute("UPDATE revisions SET state = 'serving' WHERE name = 'iris' AND revision = 2")
    assert [r.state for r in store.revisions("iris")] == ["serving", "starting"]


def test_a_database_with_two_serving_revisions_opens_with_the_newest_serving(tmp_path):
    Store(tmp_path)
    with sqlite3.connect(tmp_path / "conduit.db") as db:  # as an interrupted older conduit left it
        db.execute("DROP INDEX one_serving_revision")
        db.execute("INSERT INTO deployments (name, created_at) VALUES ('iris', 'now')")
        for number in (1, 2, 3):
            db.execute(
                "INSERT INTO revisions (name, revision, tag, state, key_sha256, created_at) VALUES ('iris', ?, 't', ?, 'k', 'now')",
                (number, "starting" if number == 3 else "serving"),
            )
    store = Store(tmp_path)
    assert [r.state for r in store.revisions("iris")] == ["archived", "serving", "starting"]
    assert store.revision("iris", 1).note == "archived on opening: a newer revision was also serving"
    with sqlite3.connect(store.path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE revisions SET state = 'serving' WHERE revision = 3")


def test_deployment_and_removal(store):
    store.ensure_deployment("iris", "/src/conduit.yaml")
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


def test_a_revision_keeps_how_it_is_served_and_the_gateway_reads_the_live_ones(store):
    store.ensure_deployment("iris")
    first = store.add_revision("iris", "iris:aaa", "ab" * 32, settings={"min_replicas": 0, "project": "team-a"})
    assert first.settings == {"min_replicas": 0, "project": "team-a"}
    store.promote("iris", 1)
    store.add_revision("iris", "iris:bbb", "ab" * 32)
    assert [(r.revision, r.state) for r in store.live_revisions()] == [(1, "serving"), (2, "starting")]
    assert store.revision("iris", 2).settings == {}


def test_fail_if_starting_leaves_a_revision_the_gateway_already_moved_on(store):
    store.ensure_deployment("iris")
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    store.add_revision("iris", "iris:bbb", "ab" * 32)
    store.promote("iris", 1)
    assert store.fail_if_starting("iris", 1, "interrupted") is False  # promoted first: it serves
    assert store.fail_if_starting("iris", 2, "interrupted") is True
    assert [(r.state, r.note) for r in store.revisions("iris")] == [("serving", ""), ("failed", "interrupted")]
