"""`conduit delete NAME` says what it stopped, so a deployment that was not running reads as such.
(Stopping a served revision and its router is tested end to end in tests/cli/test_lifecycle.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from conduit.cli.main import main
from conduit.store import Store
from conduit.targets.local import what_was_stopped


@pytest.mark.parametrize(
    ("revisions", "router", "said"),
    [
        ([2], True, "stopped revision 2 and its router"),
        ([3, 4], True, "stopped revisions 3 and 4 and its router"),
        ([1, 2, 3], False, "stopped revisions 1, 2 and 3"),
        ([], True, "stopped its router"),
        ([], False, "it was not running, so nothing was stopped"),
    ],
)
def test_what_was_stopped_in_words(revisions, router, said):
    assert what_was_stopped(revisions, router) == said


def test_deleting_a_deployment_that_was_not_running_says_so(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    store = Store()
    store.ensure_deployment("idle")
    store.add_revision("idle", "idle:v1", "0" * 64)  # recorded, never started: no pid
    assert main(["delete", "idle"]) == 0
    assert capsys.readouterr().out == "🗑️  Deleted idle: it was not running, so nothing was stopped\n"
    assert store.deployment("idle") is None
