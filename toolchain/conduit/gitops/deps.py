"""What one manifest deploys: its name, and the files it reads, relative to its own folder.

Read from the manifest text alone (no artifact has to exist), with the same parser as `conduit
validate`, so `python_version: 3.10` and the tuple form of a stage mean the same here.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Optional

from conduit.manifest.model import stage_list, stage_mapping
from conduit.manifest.parse import parse

MANIFEST_NAME = "conduit.yaml"  # also `<anything>.conduit.yaml`, as `conduit validate` finds them


@dataclass(frozen=True)
class Dependencies:
    name: str
    artifacts: tuple[str, ...]  # model files or folders (a local Hugging Face folder included)
    support: tuple[str, ...]  # requirements file and hook files


def is_manifest(path: str) -> bool:
    base = posixpath.basename(path)
    return base == MANIFEST_NAME or base.endswith("." + MANIFEST_NAME)


def read_dependencies(text: str, file: str) -> Optional[Dependencies]:
    """None when the text does not even name a deployment (a manifest too broken to deploy)."""
    document, _ = parse(text, file)
    data = document.data if document is not None else None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    stages = [stage_mapping(stage) for stage in _as_list(stage_list(data.get("flow")))]
    stages = [stage for stage in stages if isinstance(stage, dict)]
    artifacts = [stage.get("path") for stage in stages] + [stage.get("model") for stage in stages]
    hooks = [_hook_file(stage.get(key)) for stage in stages for key in ("pre", "post")]
    support = [data.get("requirements_file"), *hooks]
    return Dependencies(data["name"], _clean(artifacts), _clean(support))


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _hook_file(hook: Any) -> Optional[str]:
    return hook.split(":", 1)[0] if isinstance(hook, str) and ":" in hook else None


def _clean(paths: list[Any]) -> tuple[str, ...]:
    """Relative paths, normalised, once each. A Hugging Face hub id is harmless here: no file
    of that name exists on either side, so it never reads as changed."""
    found = [posixpath.normpath(p) for p in paths if isinstance(p, str) and p and not posixpath.isabs(p)]
    return tuple(dict.fromkeys(found))
