"""A folder holding every kind of artifact a manifest may point at (stand-ins are enough:
validation checks that files exist and fit the model type, and reads a pickle's opcodes, so the
.pkl stand-ins are real, tiny pickles; it never loads them)."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

HOOKS = '''def to_features(data):
    return data


def to_labels(output):
    return output
'''


def make_artifacts(folder: Path) -> Path:
    for name in ("model.pt", "model.onnx", "model.json", "requirements.txt"):
        (folder / name).write_text("x\n")
    for name in ("model.pkl", "scaler.pkl"):
        (folder / name).write_bytes(pickle.dumps("stand-in"))
    for name in ("spacy_model", "hf_model", "folder.pkl"):
        (folder / name).mkdir()
    (folder / "hooks.py").write_text(HOOKS)
    (folder / "broken.py").write_text("def f(:\n    pass\n")
    return folder


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return make_artifacts(tmp_path)
