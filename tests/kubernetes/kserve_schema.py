"""The KServe InferenceService schema as tests use it, and how the committed copy is made.

`python tests/kubernetes/kserve_schema.py [CRD.yaml]` rewrites `tests/data/kserve/` from the CRD in
the shared folder (`../shared/schemas/kserve/`, beside the repository in CI).
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[2]
SCHEMA_COPY = REPO / "tests" / "data" / "kserve" / "inferenceservice-v1beta1.schema.json"
SOURCE_RECORD = SCHEMA_COPY.with_name("source.json")  # the sha256 of the CRD the copy came from
SHARED_CRD = REPO.parent / "shared" / "schemas" / "kserve" / "serving.kserve.io_inferenceservices.yaml"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract_v1beta1(crd_path: Path) -> dict:
    """`spec.versions[name=v1beta1].schema.openAPIV3Schema` of the CRD, unchanged."""
    from ruamel.yaml import YAML

    crd = YAML(typ="safe", pure=False).load(crd_path.read_text(encoding="utf-8"))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return version["schema"]["openAPIV3Schema"]


def strict(schema: dict) -> dict:
    """The schema as the API server's strict field validation applies it: a field the schema does
    not name is an error, except where the CRD keeps unknown fields or declares a map."""
    schema = copy.deepcopy(schema)
    _close(schema)
    return schema


def _close(node) -> None:
    if isinstance(node, list):
        for item in node:
            _close(item)
        return
    if not isinstance(node, dict):
        return
    if "properties" in node and "additionalProperties" not in node and not node.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        node["additionalProperties"] = False
    for value in node.values():
        _close(value)


def validator() -> jsonschema.protocols.Validator:
    schema = strict(json.loads(SCHEMA_COPY.read_text(encoding="utf-8")))
    return jsonschema.Draft7Validator(schema)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SHARED_CRD
    SCHEMA_COPY.write_text(json.dumps(extract_v1beta1(source), separators=(",", ":"), sort_keys=True) + "\n")
    record = {"crd": source.name, "crd_sha256": file_sha256(source), "kserve_commit": "aaac4e294dae2c7b1aa1886447793f3aa1c30912"}
    SOURCE_RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {SCHEMA_COPY} from {source}")
