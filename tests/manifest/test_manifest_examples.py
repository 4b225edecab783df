"""Every committed example: the YAML, `Conduit.from_yaml` and a `Conduit(...)` written by hand
agree: equal Manifest objects and byte-identical to_yaml()."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from example_mirror import EXAMPLES, REPO, mirror

from conduit import Conduit, hardware, model_type
from conduit.manifest import load


def test_the_examples_are_there():
    assert (REPO / "examples").is_dir()
    assert len(EXAMPLES) >= 1, "examples/ holds no */conduit.yaml"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.parent.name for path in EXAMPLES])
def test_committed_yaml_round_trips(example: Path, tmp_path: Path):
    copy = mirror(example, tmp_path)
    assert Conduit.from_yaml(copy).to_yaml() == example.read_text()


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.parent.name for path in EXAMPLES])
def test_examples_validate_without_warnings(example: Path, tmp_path: Path):
    if "huggingface_pipeline" in example.read_text() and importlib.util.find_spec("transformers") is None:
        pytest.skip("a pipeline task is checked against the installed transformers (not installed here)")
    conduit = Conduit.from_yaml(mirror(example, tmp_path))
    assert conduit.warnings == []
    assert conduit.manifest.hardware is not None


def by_hand(example_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs) -> tuple[Conduit, Path]:
    """A Conduit(...) built in (a copy of) the example's folder, and that copy's conduit.yaml."""
    copy = mirror(REPO / "examples" / example_name / "conduit.yaml", tmp_path)
    monkeypatch.chdir(copy.parent)
    return Conduit(**kwargs), copy


def assert_same(conduit: Conduit, copy: Path, example_name: str) -> None:
    assert conduit.manifest == load(copy)
    assert conduit.manifest == Conduit.from_yaml(copy).manifest
    assert conduit.to_yaml() == (REPO / "examples" / example_name / "conduit.yaml").read_text()


def test_iris_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conduit, copy = by_hand(
        "iris", tmp_path, monkeypatch,
        name="iris", api_key="not-written", flow=(model_type.SKLEARN_CLASSIFIER, "model.pkl"), hardware=hardware.CPU,
    )
    assert_same(conduit, copy, "iris")
    assert "not-written" not in conduit.to_yaml()


def test_iris_by_hand_with_defaults_and_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conduit, copy = by_hand("iris", tmp_path, monkeypatch, name="iris", flow=("sklearn_classifier", "model.pkl"))
    assert_same(conduit, copy, "iris")


def test_iris_pipeline_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    flow = [(model_type.SKLEARN_PREPROCESSOR, "scaler.pkl"), (model_type.SKLEARN_CLASSIFIER, "model.pkl")]
    conduit, copy = by_hand("iris-pipeline", tmp_path, monkeypatch, name="iris-pipeline", flow=flow)
    assert_same(conduit, copy, "iris-pipeline")


def test_iris_labels_by_hand_with_hook_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    copy = mirror(REPO / "examples" / "iris-labels" / "conduit.yaml", tmp_path)
    spec = importlib.util.spec_from_file_location("iris_labels_hooks", copy.parent / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    monkeypatch.chdir(copy.parent)
    conduit = Conduit(
        name="iris-labels",
        flow=(model_type.SKLEARN_CLASSIFIER, "model.pkl", {"pre": hooks.to_rows, "post": hooks.to_labels}),
        hardware=hardware.CPU,
    )
    assert conduit.manifest.flow[0].pre == "hooks.py:to_rows"
    assert_same(conduit, copy, "iris-labels")


def test_huggingface_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    stage = {"model_type": model_type.HUGGINGFACE_PIPELINE, "task": "text-classification", "model": "hf_model"}
    conduit, copy = by_hand("hf-sentiment", tmp_path, monkeypatch, name="hf-sentiment", flow=stage)
    assert conduit.manifest.hardware == hardware.AMPERE_A5000  # the default for a Hugging Face flow
    assert_same(conduit, copy, "hf-sentiment")


def test_spacy_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conduit, copy = by_hand("spacy-textcat", tmp_path, monkeypatch, name="spacy-textcat", flow=(model_type.SPACY, "spacy_model"))
    assert_same(conduit, copy, "spacy-textcat")


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.parent.name for path in EXAMPLES])
def test_conduit_validate_says_each_example_is_valid(example: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    from conduit.cli.main import main

    copy = mirror(example, tmp_path)
    assert main(["validate", str(copy.parent)]) == 0
    assert capsys.readouterr().out == f"{copy}: valid ({load(copy).name})\n"
