"""Tiny real models trained in temp folders, shared by the serving, render and build tests."""
from __future__ import annotations

import ast
import importlib.util
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

HOOKS = '''
import json


def rows(data, files=None):
    """The data points, or in their place the ones in an uploaded `points` (JSON) or `table` (CSV)
    file (multipart); `["explode"]` makes the hook raise, as a buggy hook would."""
    if files and "points" in files:
        return json.loads(files["points"].decode("utf-8"))
    if files and "table" in files:
        lines = files["table"].decode("utf-8").splitlines()
        return [[float(value) for value in line.split(",")] for line in lines if line.strip()]
    if data == ["explode"]:
        raise ZeroDivisionError("the hook divided by zero")
    return data
'''


def trained_example(name: str, tmp: Path) -> Path:
    """A copy of examples/<name> with its artifacts made by its own train.py."""
    folder = Path(shutil.copytree(EXAMPLES / name, tmp / name))
    if (folder / "train.py").exists():
        skip_unless_importable(folder / "train.py")
        subprocess.run([sys.executable, str(folder / "train.py")], check=True, capture_output=True, cwd=folder)
    return folder


def skip_unless_importable(script: Path) -> None:
    """Skip the calling test when a module `script` imports is not installed (the unit lane has
    no frameworks); found without importing it, since a framework's import is the slow part."""
    for module in sorted(imported_modules(script)):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{script.parent.name}/{script.name} needs {module}, which is not installed")


def imported_modules(script: Path) -> set[str]:
    """The top-level modules `script` imports (not its relative imports)."""
    nodes = list(ast.walk(ast.parse(script.read_text(encoding="utf-8"))))
    named = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    named |= {node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return {name.split(".")[0] for name in named} - {"__future__"}


def write_manifest(folder: Path, document: dict):
    from conduit.manifest import Manifest

    YAML().dump(document, folder / "conduit.yaml")
    return Manifest.model_validate(document).with_base_dir(folder)


def iris_folder(tmp: Path, name: str = "iris-e2e", **fields):
    """Logistic regression on iris, with a `pre` hook that also reads uploaded files."""
    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500, random_state=0).fit(features, labels)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "hooks.py").write_text(HOOKS, encoding="utf-8")
    stage = {"model_type": "sklearn_classifier", "path": "model.pkl", "pre": "hooks.py:rows"}
    return write_manifest(folder, {"name": name, "flow": [stage], "cpu": 1, **fields})


def torch_folder(tmp: Path, name: str = "torch-e2e"):
    """A 2-layer torch net pickled with cloudpickle; hardware left to its default (a GPU)."""
    import cloudpickle

    torch = pytest.importorskip("torch")

    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    (folder / "net.pkl").write_bytes(cloudpickle.dumps(net))
    return write_manifest(folder, {"name": name, "flow": [["torch", "net.pkl"]], "cpu": 1, "memory": 4.0})
