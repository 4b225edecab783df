"""`conduit delete NAME` says what it stopped, so a deployment that was not running reads as such.
(Stopping served replicas, and the gateway with the last deployment, is tested end to end in
tests/cli/test_lifecycle.py and tests/targets/test_local_lifecycle.py.)"""
from __future__ import annotations

from pathlib import Path

from conduit.cli.main import main
from conduit.store import Store


def test_deleting_a_deployment_that_was_not_running_says_so(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    store = Store()
    store.ensure_deployment("idle")
    store.add_revision("idle", "idle:v1", "0" * 64)  # recorded, never started: no gateway, no replica
    assert main(["delete", "idle"]) == 0
    assert capsys.readouterr().out == "🗑️  Deleted idle: it had no replica running, so nothing was stopped\n"
    assert store.deployment("idle") is None
