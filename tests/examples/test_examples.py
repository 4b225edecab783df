"""Every example, as a new user runs it: train.py in a fresh copy, then `conduit run` with request.json."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from serving.trained import skip_unless_importable

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(path.parent.name for path in EXAMPLES_DIR.glob("*/conduit.yaml"))
ARTIFACT_NAMES = {"__pycache__", "model.pkl", "scaler.pkl", "model.pt", "model.onnx", "model.ubj", "xgb_model.json", "spacy_model", "hf_model"}


def argmax(rows):
    return np.argmax(np.array(rows), axis=1).tolist()


# What a sensible answer to each example's request.json looks like (setosa first, virginica second).
EXPECTED = {
    "iris": lambda r: argmax(r) == [0, 2] and np.allclose(np.sum(r, axis=1), 1),
    "iris-pipeline": lambda r: argmax(r) == [0, 2] and np.allclose(np.sum(r, axis=1), 1),
    "iris-labels": lambda r: [item["label"] for item in r] == ["setosa", "virginica"],
    "diabetes-regressor": lambda r: r[0] > r[1] > 0,
    "xgboost-regressor": lambda r: r[0] > r[1] > 0,
    "xgboost-classifier": lambda r: argmax(r) == [0, 2] and np.allclose(np.sum(r, axis=1), 1, atol=1e-5),
    "torch-mlp": lambda r: argmax(r) == [0, 2],
    "torch-script": lambda r: argmax(r) == [0, 2] and np.allclose(np.sum(r, axis=1), 1, atol=1e-5),
    "onnx-mlp": lambda r: argmax(r) == [0, 2] and np.allclose(np.sum(r, axis=1), 1, atol=1e-5),
    "spacy-textcat": lambda r: r[0]["cats"]["POSITIVE"] > 0.5 > r[1]["cats"]["POSITIVE"]
    and r[0]["entities"] == [{"text": "conduit", "label": "PRODUCT", "start": 7, "end": 14}],
    "hf-sentiment": lambda r: [item["label"] for item in r] == ["POSITIVE", "NEGATIVE"],
}


def test_every_example_has_an_expectation_and_a_readme_row():
    assert set(EXAMPLES) == set(EXPECTED)
    readme = (EXAMPLES_DIR / "README.md").read_text()
    assert all(f"[{name}](" in readme for name in EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_trains_and_runs(tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(EXAMPLES_DIR / name, folder, ignore=lambda _, names: [n for n in names if n in ARTIFACT_NAMES])
    skip_unless_importable(folder / "train.py")
    trained = subprocess.run([sys.executable, "train.py"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "conduit.cli.main", "run", "conduit.yaml", "--data", "@request.json"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    request = json.loads((folder / "request.json").read_text())
    assert len(result) == len(request)
    assert EXPECTED[name](result), result
