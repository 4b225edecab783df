"""What the local target says and repairs without starting a server: a revision left `starting`
by a command that is gone is marked failed by the next status (not while a command holds the
name's lock: then it is really starting), and "keeps serving" is said only of a server that
answers."""
from __future__ import annotations

import pytest

from conduit.store import Store
from conduit.targets import local, processes


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    store = Store()
    store.ensure_deployment("iris")
    return store


def test_a_revision_left_starting_is_failed_by_the_next_status_once_no_command_holds_the_name(store):
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    with store.lock("iris"):  # an apply at work: its revision is starting, not left over
        assert local.status("iris").state == "starting"
        assert store.revision("iris", 1).state == "starting"
    assert local.status("iris").state == "failed"
    assert (store.revision("iris", 1).state, store.revision("iris", 1).note) == ("failed", "interrupted")


def test_reconcile_says_what_it_did(store):
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    said: list[str] = []
    done = local.reconcile(store, "iris", said.append)
    assert done == ["revision 1 was left starting by an interrupted command: stopped, marked failed"]
    assert said == [f"🧹 iris: {done[0]}"]
    assert local.reconcile(store, "iris") == []  # nothing left to do


def test_keeps_serving_is_said_only_of_a_server_that_answers(store):
    assert local.what_serves(store, "iris") == "nothing is serving"
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    store.update_revision("iris", 1, port=processes.free_port())  # nothing listens there
    store.promote("iris", 1)
    assert local.what_serves(store, "iris") == (
        "revision 1 is recorded as serving but does not answer (see conduit status iris)"
    )
