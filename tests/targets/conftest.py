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

    for record in Store().deployments():
        local.delete(record.name, progress=lambda _: None)


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
