"""`conduit.schema.json`: the JSON Schema of conduit.yaml, generated from the pydantic model.

Pydantic describes the canonical form; the additions below teach the schema what the model's
`before` validators accept (one stage instead of a list, the tuple form `[sklearn, model.pkl]`,
`AMPERE_A100`) and the rule a Hugging Face stage follows, so editors flag the same things the
loader does. The file is written by `conduit schema`, never by hand.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conduit.hardware import Hardware
from conduit.manifest.model import HOOK_KEYS, Manifest
from conduit.model_types import ModelType

DIALECT = "https://json-schema.org/draft/2020-12/schema"
HUGGINGFACE = ModelType.HUGGINGFACE_PIPELINE.value


def manifest_schema() -> dict[str, Any]:
    schema = Manifest.model_json_schema(by_alias=True)
    definitions = schema["$defs"]
    definitions["Hardware"]["enum"] = list(Hardware.__members__)  # names, so the alias AMPERE_A100 is there
    definitions["StageTuple"] = _stage_tuple(definitions["Stage"]["properties"])
    definitions["Stage"] = _stage_either_form(definitions["Stage"])
    schema["properties"]["flow"] = _one_or_many(schema["properties"]["flow"])
    return {"$schema": DIALECT, **schema}


def schema_text() -> str:
    return json.dumps(manifest_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path) -> None:
    Path(path).write_text(schema_text(), encoding="utf-8")


def schema_is_current(path: Path) -> bool:
    path = Path(path)
    return path.is_file() and path.read_text(encoding="utf-8") == schema_text()


def _stage_tuple(stage_properties: dict) -> dict:
    hooks = {key: _hook_text(stage_properties[key]) for key in HOOK_KEYS}
    return {
        "type": "array",
        "description": "A stage in the tuple form: [model_type, path], or [model_type, path, {pre, post}].",
        "examples": [["sklearn", "model.pkl"], ["sklearn", "model.pkl", {"post": "hooks.py:to_labels"}]],
        "prefixItems": [
            {
                "allOf": [{"$ref": "#/$defs/ModelType"}, {"not": {"const": HUGGINGFACE}}],
                "description": "The model type (a Hugging Face stage needs the mapping form).",
                "examples": ["sklearn"],
            },
            {"type": "string", "description": stage_properties["path"]["description"], "examples": ["model.pkl"]},
            {
                "type": "object",
                "properties": hooks,
                "additionalProperties": False,
                "description": "Optional hooks.",
                "examples": [{"post": "hooks.py:to_labels"}],
            },
        ],
        "minItems": 2,
        "maxItems": 3,
    }


def _hook_text(hook: dict) -> dict:
    """A hook property without its `null` branch: in the tuple form a hook is written or left out."""
    return {**copy.deepcopy(hook["anyOf"][0]), "description": hook["description"], "examples": hook["examples"]}


def _stage_either_form(mapping: dict) -> dict:
    """A stage is a mapping (with the Hugging Face rule) or the tuple form."""
    mapping = {
        **mapping,
        "if": {"properties": {"model_type": {"const": HUGGINGFACE}}, "required": ["model_type"]},
        "then": {
            "required": ["task", "model"],
            "properties": {"path": {"type": "null"}, "task": {"type": "string"}, "model": {"type": "string"}},
        },
        "else": {
            "required": ["path"],
            "properties": {
                "path": {"type": "string"},
                "task": {"type": "null"},
                "model": {"type": "null"},
                "options": {"maxProperties": 0},
            },
        },
    }
    return {"description": mapping["description"], "anyOf": [mapping, {"$ref": "#/$defs/StageTuple"}]}


def _one_or_many(flow: dict) -> dict:
    """`flow:` holds one stage or a list of them."""
    many = {key: flow.pop(key) for key in ("type", "items", "minItems")}
    return {**flow, "anyOf": [{"$ref": "#/$defs/Stage"}, many]}
