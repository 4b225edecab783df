"""What the local target says and decides about revisions without a server: a revision never stays
`starting` when no gateway can finish it, "keeps serving" is said only of a deployment whose
gateway runs, the state `conduit status` shows follows the gateway's summary. (Served revisions:
test_local_lifecycle.py, test_interrupts.py, test_gateway_e2e.py; a delete of a deployment that
never ran: tests/cli/test_delete.py.)"""
from __future__ import annotations

import pytest

from conduit.errors import DeployError
from conduit.store import Store
from conduit.targets import local
from conduit.targets.local.settings import ServeSettings

DOWN = "down (the gateway is not running; conduit apply starts it again)"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    store = Store()
    store.ensure_deployment("iris")
    return store


def test_a_revision_waiting_on_a_gateway_that_does_not_run_fails_at_once(store):
    with pytest.raises(DeployError) as failure:
        local.roll_out(store, "iris", "iris:aaa", "ab" * 32, ServeSettings(), progress=lambda _: None)
    logs = local.logs_dir(store) / "gateway.log"
    assert str(failure.value).startswith(f"the gateway stopped while revision 1 of iris was starting; see {logs}")
    revision = store.revision("iris", 1)
    assert revision.state == "failed" and revision.note.startswith("DeployError: the gateway stopped")
    assert revision.log_path == str(local.logs_dir(store) / "iris-r1.log")


def test_keeps_serving_is_said_only_while_the_gateway_runs(store):
    assert local.what_serves(store, "iris") == "nothing is serving"
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    store.promote("iris", 1)
    assert local.what_serves(store, "iris") == (
        "revision 1 is recorded as serving but the gateway is not running (see conduit status iris)"
    )
    status = local.status("iris")
    assert (status.state, status.serves, status.gateway_port, status.view) == (DOWN, False, None, {})


def status_with(store: Store, view: dict, degraded: str | None = None) -> local.DeploymentStatus:
    """The status of iris as if its gateway ran on port 8765 and summarised it as `view`."""
    return local.DeploymentStatus(
        record=store.require("iris"),
        revisions=store.revisions("iris"),
        serving=store.serving("iris"),
        gateway_port=8765,
        view=view,
        degraded=degraded,
    )


@pytest.mark.parametrize(
    ("view", "degraded", "state", "serves"),
    [
        ({"revision": 1, "state": "serving"}, None, "serving", True),
        ({"revision": 1, "state": "scaled to zero"}, None, "scaled to zero", True),
        ({"revision": 1, "state": "serving"}, "the disk is full", "serving (degraded: the disk is full)", True),
        ({"revision": 1, "state": "starting", "failing": "replica exited; restarting in 2s"}, None,
         "starting (failing: replica exited; restarting in 2s)", False),
        ({}, None, "starting", False),  # the gateway has not picked it up yet
        ({"revision": 0, "state": "serving"}, None, "starting", False),  # it still serves the one before
    ],
)
def test_the_state_follows_the_gateways_summary(store, view, degraded, state, serves):
    store.add_revision("iris", "iris:aaa", "ab" * 32, settings=ServeSettings(project="team-a").as_dict())
    store.promote("iris", 1)
    status = status_with(store, view, degraded)
    assert (status.state, status.serves) == (state, serves)
    assert status.endpoint == "http://127.0.0.1:8765/v1/team-a/iris/predict"


def test_a_deployment_whose_only_revision_failed_has_no_endpoint(store):
    store.add_revision("iris", "iris:aaa", "ab" * 32)
    store.fail("iris", 1, "exited with code 1")
    status = status_with(store, {})
    assert (status.state, status.endpoint, status.serves) == ("failed", None, False)

