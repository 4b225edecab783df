"""Fixtures for the local target's end-to-end tests: a CONDUIT_HOME per test module whose every
deployment is deleted at the end, and example projects trained in temp folders."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving.trained import skip_unless_importable

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TEST_KEY = "local-e2e-key-0123456789"


def example_names() -> list[str]:
    return sorted(path.parent.name for path in EXAMPLES.glob("*/conduit.yaml"))


def trained_example(name: str, tmp: Path) -> Path:
    """A copy of examples/<name> holding only its source files (what git would commit), with its
    artifacts made fresh by its own train.py."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", f"examples/{name}"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.split()
    folder = tmp / name
    for relative in listed:
        target = folder / Path(relative).relative_to(f"examples/{name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    skip_unless_importable(folder / "train.py")
    trained = subprocess.run([sys.executable, "train.py"], cwd=folder, capture_output=True, text=True)
    assert trained.returncode == 0, f"{name}/train.py failed:\n{trained.stderr[-3000:]}"
    return folder


@pytest.fixture(scope="module")
def conduit_home(tmp_path_factory):
    """A fresh CONDUIT_HOME and a known API key for one test module; everything it started is
    stopped at the end, however the tests went."""
    with serving_home(tmp_path_factory.mktemp("conduit-home")) as home:
        yield home


@contextlib.contextmanager
def serving_home(home: Path):
    """CONDUIT_HOME set to `home` and the test key, for the block; everything started meanwhile
    is stopped at its end."""
    saved = {name: os.environ.get(name) for name in ("CONDUIT_HOME", "CONDUIT_API_KEY", "CONDUIT_READY_TIMEOUT")}
    os.environ.update({"CONDUIT_HOME": str(home), "CONDUIT_API_KEY": TEST_KEY, "CONDUIT_READY_TIMEOUT": "300"})
    try:
        yield home
    finally:
        stop_everything()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def constant_project(folder: Path, name: str, answer: int) -> Path:
    """A deployment `name` whose real, fitted sklearn model answers `answer` for every point of
    two features; its conduit.yaml. A new Bento for each answer."""
    import pickle

    from ruamel.yaml import YAML
    from sklearn.dummy import DummyClassifier

    folder.mkdir(parents=True, exist_ok=True)
    model = DummyClassifier(strategy="constant", constant=answer).fit([[i, i] for i in range(5)], [answer] * 5)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    YAML().dump({"name": name, "flow": [{"model_type": "sklearn", "path": "model.pkl"}], "hardware": "CPU", "cpu": 1}, folder / "conduit.yaml")
    return folder / "conduit.yaml"


def stop_everything() -> None:
    from conduit.store import Store
    from conduit.targets import local

    store = Store()
    for record in store.deployments():
        local.delete(record.name, progress=lambda _: None)
    local.stop_gateway(store)


def replicas_of(name: str, revision: int | None = None) -> list[dict]:
    """The running gateway's rows (state.json) for `name`'s replicas: of `revision`, else of all."""
    from conduit.store import Store
    from conduit.targets.local.gateway import read_state

    rows = read_state(Store().home).get("replicas", [])
    return [row for row in rows if row["name"] == name and revision in (None, row["revision"])]


def gateway_processes() -> list:
    """The psutil processes of the running keeper, its gateway and everything the gateway started
    (zygotes, replicas' leaders, their workers)."""
    import psutil

    from conduit.store import Store
    from conduit.targets import local
    from conduit.targets.local.gateway import read_state

    keeper = local.running_gateway(Store())
    assert keeper is not None, "the gateway does not run"
    gateway = psutil.Process(read_state(Store().home)["pid"])
    return [psutil.Process(keeper["pid"]), gateway, *gateway.children(recursive=True)]


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def metrics_url(endpoint: str) -> str:
    """The deployment's /metrics at the gateway (its counters, then a ready replica's)."""
    return endpoint.rsplit("/", 1)[0] + "/metrics"


def wait_for(condition, timeout_s: float = 120.0):
    """Poll `condition` every 0.1 s until it returns something true, and return that; fail after
    `timeout_s` (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def closed_by_peer(sock) -> bool:
    """Whether the other end closed this idle socket (it sent nothing, so EOF is all it can read)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)
