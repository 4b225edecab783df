"""Helpers to build manifests and flows around artifacts in a temp folder."""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Optional


from conduit.manifest import Manifest
from conduit.runtimes.flow import Flow

IRIS_POINTS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def make_manifest(folder: Path, flow: Any, hardware: Optional[str] = "CPU", name: str = "test-flow") -> Manifest:
    document = {"name": name, "flow": flow}
    if hardware is not None:
        document["hardware"] = hardware
    return Manifest.model_validate(document).with_base_dir(folder)


def write_manifest(folder: Path, flow: Any, hardware: Optional[str] = "CPU") -> Path:
    """conduit.yaml for `conduit run`; JSON is YAML, so no dumper is needed."""
    document = {"name": "test-flow", "flow": flow, **({"hardware": hardware} if hardware else {})}
    path = folder / "conduit.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def load_flow(folder: Path, flow: Any, hardware: Optional[str] = "CPU") -> Flow:
    return Flow.load(make_manifest(folder, flow, hardware))


def save_pickle(path: Path, obj: Any) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)
    return path
