"""The manifest: model (model.py), loading in phases (loader.py), YAML output (dump.py), JSON Schema (schema.py)."""

from conduit.manifest.loader import MANIFEST_NAME, build, load, load_with_warnings, manifest_file
from conduit.manifest.model import API_VERSION, Batching, Manifest, PredictionLog, Stage
from conduit.manifest.problems import ManifestInvalid, Problem

__all__ = [
    "API_VERSION",
    "MANIFEST_NAME",
    "Batching",
    "Manifest",
    "ManifestInvalid",
    "PredictionLog",
    "Problem",
    "Stage",
    "build",
    "load",
    "load_with_warnings",
    "manifest_file",
]
