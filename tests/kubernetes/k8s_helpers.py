"""Helpers for the Kubernetes target tests: manifests built in code, and the two schema checks.
(A module of its own, not conftest.py: several test folders have a conftest, and `from conftest`
would find whichever was imported first.)"""
from __future__ import annotations

import re
from functools import lru_cache

import pytest
from conduit.hardware import Hardware
from conduit.manifest import Manifest
from kserve_schema import validator as kserve_validator
from ruamel.yaml import YAML

# Every row once (the AMPERE_A100 alias is the same member as A100).
HARDWARE_ROWS = list(dict.fromkeys(Hardware))
FLOWS = {
    "sklearn": [{"model_type": "sklearn_preprocessor", "path": "scaler.pkl"}, {"model_type": "sklearn_classifier", "path": "model.pkl", "post": "hooks.py:to_labels"}],
    "sklearn_single": [{"model_type": "sklearn", "path": "model.pkl"}],
    "torch": [{"model_type": "torch", "path": "model.pt"}],
    "huggingface": [{"model_type": "huggingface_pipeline", "task": "text-classification", "model": "hf_model"}],
}
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def make_manifest(name: str = "iris", flow: str = "sklearn", **fields) -> Manifest:
    return Manifest.model_validate({"name": name, "flow": FLOWS[flow], **fields})


def parse(text: str) -> dict:
    return YAML(typ="safe", pure=True).load(text)


@lru_cache(maxsize=1)
def _kserve():
    return kserve_validator()


def kserve_errors(doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _kserve().iter_errors(doc)]


def kubernetes_errors(doc: dict) -> list[str]:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")

    try:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc)]
    return []


def bad_labels(doc: dict) -> list[str]:
    """Label values the API server refuses (63 characters, letters, digits, '-', '_', '.')."""
    found = []
    for labels in _all_label_maps(doc):
        found += [f"{k}={v}" for k, v in labels.items() if len(v) > 63 or not LABEL_VALUE.match(v)]
    return found


def _all_label_maps(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("labels", "matchLabels", "selector") and isinstance(value, dict) and all(
                isinstance(v, str) for v in value.values()
            ):
                yield value
            else:
                yield from _all_label_maps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_label_maps(item)
