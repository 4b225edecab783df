"""The committed examples, copied where tests may create files.

Artifacts are made by each example's train.py and never committed, so a fresh clone has none.
`mirror()` copies an example's own files under a temporary root at the same relative place (with
the repository's conduit.schema.json at that root, so the schema comment still resolves) and
puts stand-ins where the artifacts go: validation checks that they exist and reads a pickle's
opcodes (so a .pkl stand-in is a tiny real pickle), never loads them.
"""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

from ruamel.yaml import YAML

from conduit.manifest.model import stage_list, stage_mapping
from conduit.model_types import MODEL_TYPES, ModelType

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*/conduit.yaml"))


def artifacts_of(manifest_file: Path) -> dict[str, bool]:
    """Artifact path -> whether it is a folder, for every stage of the manifest."""
    found: dict[str, bool] = {}
    for stage in stage_list(YAML(typ="safe").load(manifest_file.read_text())["flow"]):
        stage = stage_mapping(stage)
        if stage["model_type"] == ModelType.HUGGINGFACE_PIPELINE.value:
            found[stage["model"]] = True
        else:
            found[stage["path"]] = MODEL_TYPES[ModelType(stage["model_type"])].folder
    return found


def mirror(manifest_file: Path, root: Path) -> Path:
    """A copy of the example's conduit.yaml under `root`, with its hooks, requirements and stand-ins."""
    folder = root / manifest_file.parent.relative_to(REPO)
    folder.mkdir(parents=True)
    shutil.copy(REPO / "conduit.schema.json", root / "conduit.schema.json")
    artifacts = artifacts_of(manifest_file)
    for item in manifest_file.parent.iterdir():
        if item.is_file() and item.name not in artifacts:
            shutil.copy(item, folder / item.name)
    for artifact, is_folder in artifacts.items():
        target = folder / artifact
        target.parent.mkdir(parents=True, exist_ok=True)
        stand_in = pickle.dumps("stand-in") if target.suffix == ".pkl" else b""
        target.mkdir() if is_folder else target.write_bytes(stand_in)
    return folder / manifest_file.name
