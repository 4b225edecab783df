"""to_yaml(): one exact format, so committed files and Conduit(...) compare byte for byte."""
from __future__ import annotations

import pickle
from pathlib import Path

from conduit.manifest import build, load
from conduit.manifest.dump import to_yaml


def test_the_format_word_for_word(artifacts: Path):
    data = {
        "name": "full",
        "flow": [
            ("sklearn_preprocessor", "scaler.pkl"),
            {"model_type": "sklearn_classifier", "path": "model.pkl", "post": "hooks.py:to_labels"},
        ],
        "memory": 16,
        "requirements_file": "requirements.txt",
        "python_version": "3.11",
        "batching": {"max_batch_size": 64},
    }
    assert to_yaml(build(data, artifacts)[0]) == (
        "apiVersion: conduit/v1\n"
        "name: full\n"
        "project: default\n"
        "flow:\n"
        "  - model_type: sklearn_preprocessor\n"
        "    path: scaler.pkl\n"
        "  - model_type: sklearn_classifier\n"
        "    path: model.pkl\n"
        "    post: hooks.py:to_labels\n"
        "hardware: CPU\n"
        "cpu: 2\n"
        "memory: 16.0\n"
        "cooldown: 60\n"
        "min_replicas: 0\n"
        "max_replicas: 2\n"
        "requirements_file: requirements.txt\n"
        "force_rebuild: false\n"
        'python_version: "3.11"\n'
        "batching:\n"
        "  max_batch_size: 64\n"
        "  max_latency_ms: 10\n"
    )


def test_huggingface_options_are_written_when_set(artifacts: Path):
    stage = {"model_type": "huggingface_pipeline", "task": "text-classification", "model": "hf_model",
             "options": {"top_k": None, "truncation": True}}
    text = to_yaml(build({"name": "hf", "flow": stage}, artifacts)[0])
    assert (
        "flow:\n  - model_type: huggingface_pipeline\n    task: text-classification\n    model: hf_model\n"
        "    options:\n      top_k:\n      truncation: true\nhardware: AMPERE_A5000\n"
    ) in text


def test_schema_comment_points_at_the_nearest_schema(artifacts: Path):
    (artifacts / "deploy").mkdir()
    (artifacts / "deploy" / "model.pkl").write_bytes(pickle.dumps("stand-in"))  # validate reads its opcodes
    manifest = build({"name": "iris", "flow": ("sklearn", "model.pkl")}, artifacts / "deploy")[0]
    assert not to_yaml(manifest).startswith("#")
    (artifacts / "conduit.schema.json").write_text("{}")
    assert to_yaml(manifest).startswith("# yaml-language-server: $schema=../conduit.schema.json\napiVersion: conduit/v1\n")
    (artifacts / "deploy" / "conduit.schema.json").write_text("{}")
    assert to_yaml(manifest).startswith("# yaml-language-server: $schema=conduit.schema.json\n")


def test_dumped_text_loads_back_to_an_equal_manifest(artifacts: Path):
    data = {"name": "iris", "flow": [("sklearn", "model.pkl", {"pre": "hooks.py:to_features"})], "cpu": 3, "hardware": "GPU"}
    manifest = build(data, artifacts)[0]
    (artifacts / "conduit.yaml").write_text(to_yaml(manifest))
    assert load(artifacts / "conduit.yaml") == manifest
    assert to_yaml(load(artifacts / "conduit.yaml")) == to_yaml(manifest)
