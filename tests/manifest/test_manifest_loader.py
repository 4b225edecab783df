"""Loading valid manifests: the accepted forms, YAML traps, defaults and warnings."""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import pytest

from conduit.errors import UsageError
from conduit.hardware import Hardware
from conduit.manifest import Manifest, ManifestInvalid, build, load, load_with_warnings
from conduit.model_types import ModelType


def write(folder: Path, text: str, name: str = "conduit.yaml") -> Path:
    file = folder / name
    file.write_text(text, encoding="utf-8")
    return file


@pytest.mark.parametrize("written, meant", [("3.10", "3.10"), ("3.9", "3.9"), ("3.11", "3.11"), ('"3.12"', "3.12")])
def test_python_version_means_the_text_as_written(artifacts: Path, written: str, meant: str):
    manifest = load(write(artifacts, f"name: iris\nflow: [sklearn, model.pkl]\npython_version: {written}\n"))
    assert manifest.python_version == meant


@pytest.mark.parametrize(
    "flow",
    [
        "[sklearn, model.pkl]",
        "{model_type: sklearn, path: model.pkl}",
        "\n  - [sklearn, model.pkl]",
        "\n  - model_type: sklearn\n    path: model.pkl",
    ],
    ids=["tuple", "one mapping", "list of tuples", "list of mappings"],
)
def test_every_flow_form_gives_the_same_manifest(artifacts: Path, flow: str):
    manifest = load(write(artifacts, f"name: iris\nflow: {flow}\n"))
    assert [(stage.model_type, stage.path) for stage in manifest.flow] == [(ModelType.SKLEARN, "model.pkl")]


def test_hooks_in_the_tuple_form(artifacts: Path):
    manifest = load(write(artifacts, "name: iris\nflow: [sklearn, model.pkl, {pre: hooks.py:to_features}]\n"))
    assert manifest.flow[0].pre == "hooks.py:to_features"


@pytest.mark.parametrize(
    "flow, hardware",
    [
        ("[sklearn, model.pkl]", Hardware.CPU),
        ("[xgboost_classifier, model.json]", Hardware.CPU),
        ("[spacy, spacy_model]", Hardware.CPU),
        ("[torch, model.pt]", Hardware.AMPERE_A5000),
        ("[[sklearn_preprocessor, scaler.pkl], [onnx, model.onnx]]", Hardware.AMPERE_A5000),
        ("{model_type: huggingface_pipeline, task: fill-mask, model: hf_model}", Hardware.AMPERE_A5000),
    ],
)
def test_defaults_phase_sets_hardware_explicitly(artifacts: Path, flow: str, hardware: Hardware):
    manifest = load(write(artifacts, f"name: iris\nflow: {flow}\n"))
    assert manifest.hardware == hardware == manifest.resolved_hardware


def test_loaded_and_built_manifests_compare_equal(artifacts: Path):
    loaded = load(write(artifacts, "name: iris\nflow: [sklearn, model.pkl]\nmemory: 8\n"))
    built, _ = build({"name": "iris", "flow": [("sklearn", "model.pkl")], "memory": 8.0}, artifacts)
    assert loaded == built
    assert loaded.memory == 8.0 and isinstance(loaded.memory, float)
    assert loaded != build({"name": "iris", "flow": ("sklearn", "model.pkl"), "cpu": 3}, artifacts)[0]


def test_base_dir_is_the_manifests_folder(artifacts: Path):
    (artifacts / "sub").mkdir()
    (artifacts / "sub" / "model.pkl").write_bytes(pickle.dumps("stand-in"))  # validate reads its opcodes
    manifest = load(write(artifacts / "sub", "name: iris\nflow: [sklearn, model.pkl]\n"))
    assert manifest.base_dir == (artifacts / "sub").resolve()
    assert manifest.resolve("model.pkl") == (artifacts / "sub" / "model.pkl").resolve()


def test_a_folder_means_its_conduit_yaml(artifacts: Path):
    write(artifacts, "name: iris\nflow: [sklearn, model.pkl]\n")
    assert load(artifacts).name == "iris"


def test_a_missing_file_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="no manifest at"):
        load(tmp_path / "nope.yaml")


def test_a_binary_file_is_refused_in_plain_words(tmp_path: Path):
    (tmp_path / "conduit.yaml").write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ManifestInvalid) as caught:
        load(tmp_path / "conduit.yaml")
    assert caught.value.problems[0].message == "the file is not UTF-8 text"


@pytest.mark.parametrize("old, new", [("GPU", "TURING_5000 (RTX 5000, 16 GB)"), ("A10", "AMPERE_A5000 (RTX A5000, 24 GB)")])
def test_deprecated_hardware_is_accepted_with_a_warning(artifacts: Path, old: str, new: str):
    manifest, warnings = load_with_warnings(write(artifacts, f"name: iris\nflow: [torch, model.pt]\nhardware: {old}\n"))
    assert manifest.hardware == Hardware(old)
    assert [str(warning) for warning in warnings] == [
        f"{artifacts}/conduit.yaml:3:11: warning: hardware: hardware {old} is deprecated (hint: use {new})"
    ]


def test_warnings_travel_with_problems(artifacts: Path):
    with pytest.raises(ManifestInvalid) as caught:
        load(write(artifacts, "name: iris\nflow: [torch, model.pt]\nhardware: GPU\ncpu: 0\n"))
    assert [warning.key for warning in caught.value.warnings] == ["hardware"]
    assert [problem.key for problem in caught.value.problems] == ["cpu"]


def test_ampere_a100_is_an_alias_of_a100(artifacts: Path):
    manifest = load(write(artifacts, "name: iris\nflow: [torch, model.pt]\nhardware: AMPERE_A100\n"))
    assert manifest.hardware is Hardware.A100 is Hardware.AMPERE_A100


def test_a_hub_id_is_allowed_with_a_warning(artifacts: Path):
    pytest.importorskip("transformers")  # without it, the task could not be checked: a second warning
    text = "name: iris\nflow: {model_type: huggingface_pipeline, task: fill-mask, model: org/bert}\n"
    manifest, warnings = load_with_warnings(write(artifacts, text))
    assert manifest.flow[0].model == "org/bert"
    assert [warning.message for warning in warnings] == [
        "model 'org/bert' is not a folder next to the manifest; it must already be in the local Hugging Face cache"
    ]


def test_hook_files_are_imported_in_a_child_process_never_in_this_one(artifacts: Path):
    marker = artifacts / "ran"
    code = f"import os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n\ndef hook(x):\n    return x\n"
    (artifacts / "side_effect.py").write_text(code)
    manifest = load(write(artifacts, "name: iris\nflow: [sklearn, model.pkl, {post: side_effect.py:hook}]\n"))
    assert manifest.flow[0].post == "side_effect.py:hook"
    assert marker.read_text() != str(os.getpid())  # imported, as the Bento will, by a child
    hook_file = str((artifacts / "side_effect.py").resolve())
    assert not [module for module in list(sys.modules.values()) if getattr(module, "__file__", None) == hook_file]


def test_all_fields(artifacts: Path):
    text = (
        "apiVersion: conduit/v1\nname: full\nproject: team-a\nflow:\n  - [sklearn_preprocessor, scaler.pkl]\n"
        "  - {model_type: sklearn_classifier, path: model.pkl, post: hooks.py:to_labels}\n"
        "hardware: CPU\ncpu: 4\nmemory: 16.5\ncooldown: 300\nmin_replicas: 1\nmax_replicas: 3\nreplica_concurrency: 8\n"
        "requirements_file: requirements.txt\nforce_rebuild: true\npython_version: '3.11'\n"
        "batching:\n  max_batch_size: 64\n  max_latency_ms: 5\n"
        "prediction_log:\n  sample: 0.5\n  payloads: false\n  retention_days: 7\n  max_mb: 64\n  url: http://sink.local\n"
    )
    manifest = load(write(artifacts, text))
    assert manifest.model_dump(mode="json", by_alias=True, exclude={"flow"}) == {
        "apiVersion": "conduit/v1", "name": "full", "project": "team-a", "hardware": "CPU", "cpu": 4, "memory": 16.5,
        "cooldown": 300, "min_replicas": 1, "max_replicas": 3, "replica_concurrency": 8, "requirements_file": "requirements.txt", "force_rebuild": True,
        "python_version": "3.11", "batching": {"max_batch_size": 64, "max_latency_ms": 5},
        "prediction_log": {
            "enabled": True, "sample": 0.5, "payloads": False, "retention_days": 7, "max_mb": 64, "url": "http://sink.local",
        },
    }
    assert isinstance(manifest, Manifest) and len(manifest.flow) == 2
