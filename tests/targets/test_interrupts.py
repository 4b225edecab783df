"""Ctrl-C at any point of an apply leaves the store true (issue 16, item 7): a real `conduit apply`
in a process of its own, interrupted when its output says it reached a step (starting, ready,
retiring), then: at most one revision serving, none left `starting`, no server running for a
revision that does not serve, and the endpoint answering while one serves: Ctrl-C while waiting
fails the new revision (`Store.fail_if_starting`) unless the gateway promoted it first. A command
killed outright (no chance to clean up) leaves its revision to the gateway, which promotes or
fails it: never two serving."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("sklearn")  # every test here serves a real sklearn model

from conduit.store import Store
from conduit.targets import local
from conduit.targets.local import processes
from conftest import TEST_KEY, constant_project, replicas_of, wait_for

pytestmark = pytest.mark.e2e
NAME = "interrupted"
# A line of apply's output, and the step it is printed at.
STARTING = "⏳ Starting revision"  # the revision's server is starting
READY = "✅ Revision"  # just ready: the endpoint is about to switch to it
ARCHIVED = "📦 Archived revision"  # the old revision was being retired
ROUNDS = 2  # each interrupt point, this many times (bounded)


def write_project(folder: Path, answer: int) -> Path:
    return constant_project(folder, NAME, answer)


def apply_until(manifest: Path, marker: str, signum: int) -> int:
    return conduit_until(["apply", str(manifest)], marker, signum)


def conduit_until(args: list[str], marker: str, signum: int) -> int:
    """Run `conduit ARGS`, send `signum` to it (its process group, as a terminal's Ctrl-C does)
    once a line starting with `marker` is printed, and return its exit code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "conduit.cli.main", *args]
    # SIGINT back to its default: a test run in the background (nohup, `&`) passes it on ignored,
    # and then the Ctrl-C sent here would do nothing at all.
    restore_ctrl_c = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        preexec_fn=restore_ctrl_c,  # noqa: PLW1509 - it only resets one signal before exec; it takes no lock
    )
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith(marker):
            os.killpg(process.pid, signum)
            break
    else:
        pytest.fail(f"conduit {args[0]} ended before printing {marker!r}:\n{''.join(output)}")
    process.stdout.read()
    return process.wait(timeout=300)


def assert_store_is_true() -> None:
    """The store after any interrupt: one serving revision at most, none starting, no replica of a
    revision that does not serve (once the gateway has drained it), and the endpoint answering the
    serving revision's model."""
    store = Store()
    revisions = store.revisions(NAME)
    states = [revision.state for revision in revisions]
    assert states.count("serving") <= 1 and "starting" not in states, states
    for revision in revisions:
        if revision.state != "serving":
            wait_for(lambda r=revision: not replicas_of(NAME, r.revision) and not processes.writers_of(r.log_path))
    serving = store.serving(NAME)
    if serving is not None:
        endpoint = local.status(NAME).endpoint
        response = httpx.post(endpoint, json=[[0.5, 1.5]], headers={"Authorization": TEST_KEY}, timeout=60)
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def project(conduit_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("project")
    command = [sys.executable, "-m", "conduit.cli.main", "apply", str(write_project(folder, 1))]
    assert subprocess.run(command, check=False).returncode == 0
    return folder


@pytest.mark.parametrize("marker", [STARTING, READY, ARCHIVED])
def test_ctrl_c_during_apply_leaves_one_serving_revision_and_no_stray_server(project, marker):
    for _ in range(ROUNDS):
        answer = 2 + len(Store().revisions(NAME))  # a new Bento each time
        apply_until(write_project(project, answer), marker, signal.SIGINT)
        assert_store_is_true()


@pytest.mark.parametrize("marker", [STARTING, READY])
def test_ctrl_c_during_rollback_leaves_one_serving_revision_and_no_stray_server(project, marker):
    conduit_until(["rollback", NAME], marker, signal.SIGINT)
    assert_store_is_true()


def test_ctrl_c_while_starting_leaves_the_old_revision_serving_and_says_interrupted(project):
    before = Store().serving(NAME)
    apply_until(write_project(project, 40), STARTING, signal.SIGINT)
    store = Store()
    latest = store.revisions(NAME)[-1]
    assert (latest.state, latest.note) == ("failed", "interrupted (KeyboardInterrupt)")
    assert store.serving(NAME).revision == before.revision
    assert_store_is_true()


def test_a_killed_apply_leaves_its_revision_to_the_gateway_which_finishes_it(project):
    before, latest = Store().serving(NAME), Store().revisions(NAME)[-1]
    apply_until(write_project(project, 41), STARTING, signal.SIGKILL)  # no chance to clean up
    left = Store().revisions(NAME)[-1]
    assert left.revision == latest.revision + 1
    finished = wait_for(lambda: (revision := Store().revision(NAME, left.revision)).state != "starting" and revision, 600)
    assert finished.state == "serving", finished  # its replica was healthy: the gateway promoted it
    assert Store().revision(NAME, before.revision).state == "archived"
    wait_for(lambda: local.status(NAME).state == "serving")  # the gateway writes its view a moment after
    status = subprocess.run([sys.executable, "-m", "conduit.cli.main", "status", NAME], capture_output=True, text=True, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert_store_is_true()
