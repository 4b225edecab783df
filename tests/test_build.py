"""Build: a real Bento in the store under CONDUIT_HOME, reused when nothing changed."""
from __future__ import annotations

from pathlib import Path

import pytest

from conduit.build import build
from conduit.targets.local.bentoml_serving import bento_store
from serving.trained import iris_folder


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def iris(tmp_path):
    return iris_folder(tmp_path / "src")


def test_build_reuse_force_and_a_changed_artifact(home, iris):
    lines: list[str] = []
    first = build(iris, progress=lines.append)
    assert not first.reused and first.tag.startswith("iris-e2e:")
    assert bento_store().get(first.tag).path.startswith(str(home / "bentoml" / "bentos"))
    assert any(line.startswith("✅ Built Bento") for line in lines)

    again = build(iris, progress=lines.append)
    assert again.reused and again.tag == first.tag and "up to date" in lines[-1]

    forced = build(iris, force=True, progress=lines.append)
    assert not forced.reused and forced.tag == first.tag
    assert not build(iris.model_copy(update={"force_rebuild": True}), progress=lines.append).reused

    model = iris.resolve("model.pkl")
    model.write_bytes(model.read_bytes() + b"\n")
    changed = build(iris, progress=lines.append)
    assert not changed.reused and changed.tag != first.tag
    assert {bento.tag.version for bento in bento_store().list("iris-e2e")} == {first.version, changed.version}


def test_the_plain_api_key_never_reaches_the_bento(home, iris, monkeypatch):
    monkeypatch.setenv("CONDUIT_API_KEY", "plain-key-that-must-not-leak")
    result = build(iris, progress=lambda line: None)
    bento_dir = bento_store().get(result.tag).path
    for path in Path(bento_dir).rglob("*"):
        if path.is_file():
            assert b"plain-key-that-must-not-leak" not in path.read_bytes(), path
