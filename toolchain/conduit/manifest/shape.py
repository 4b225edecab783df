"""Phase 2, schema: check the data against the pydantic model and say what is wrong in plain words.

Validation is strict and goes through JSON, exactly as `conduit.schema.json` sees the file: `"2"`
is not a number and `yes` is not a boolean, so the loader and an editor using the schema agree.
"""

from __future__ import annotations

import enum
import json
from pathlib import PurePath
from typing import Any, Callable, Optional

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from conduit.hardware import Hardware
from conduit.manifest.model import PYTHON_VERSIONS, Batching, Manifest, PredictionLog, Stage
from conduit.manifest.names import name_problem, project_problem, suggest_name, suggest_project
from conduit.manifest.problems import KeyPath, ManifestInvalid, Problem, did_you_mean, show
from conduit.model_types import ModelType

Message = tuple[str, Optional[str]]  # (message, hint)
NESTED_MODELS: dict[str, type[BaseModel]] = {"batching": Batching, "prediction_log": PredictionLog}


def check_shape(data: dict) -> tuple[Optional[Manifest], list[Problem]]:
    """The validated manifest (no defaults applied yet), or None and every shape problem."""
    try:
        return Manifest.model_validate_json(json.dumps(data), strict=True), []
    except ValidationError as error:
        return None, [_problem(detail) for detail in error.errors(include_url=False)]


def plain(value: Any, path: KeyPath = ()) -> Any:
    """The data as JSON carries it, which is what the schema sees: enums as their values, paths as
    text, tuples as lists, numpy scalars as numbers. Anything else is refused where it stands."""
    if isinstance(value, dict):
        return {str(key): plain(item, path + (str(key),)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item, path + (index,)) for index, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    if hasattr(value, "item"):
        return value.item()
    message = f"a value of type {type(value).__name__} cannot be written in a manifest"
    raise ManifestInvalid([Problem(message, path, hint="use text, numbers, true/false, lists and mappings")])


def _problem(detail: ErrorDetails) -> Problem:
    path: KeyPath = tuple(detail["loc"])
    value = detail.get("input")
    field = next((part for part in reversed(path) if isinstance(part, str)), "flow")
    explain = _EXPLAIN.get(detail["type"])
    message, hint = explain(field, value, detail.get("ctx") or {}, path) if explain else (detail["msg"], None)
    return Problem(message, path, value, hint, at_key=detail["type"] == "extra_forbidden")


def _missing(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    examples = {
        "name": "name: iris-classifier",
        "flow": "flow: [sklearn, model.pkl]",
        "model_type": "model_type: sklearn",
    }
    return f"required key `{field}` is missing", (f"e.g. `{examples[field]}`" if field in examples else None)


def _unknown_key(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    allowed = _keys_of(_model_at(path[:-1]))
    return f"unknown key `{field}`", did_you_mean(field, allowed) or f"allowed keys: {', '.join(allowed)}"


def _model_at(path: KeyPath) -> type[BaseModel]:
    if path[:1] == ("flow",):
        return Stage
    return NESTED_MODELS.get(str(path[0]), Manifest) if path else Manifest


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _typed(expected: str, hint: Optional[str] = None) -> Callable[..., Message]:
    def explain(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
        return f"{field} must be {expected}, got {show(value)}", hint

    return explain


def _bound(word: str, key: str) -> Callable[..., Message]:
    def explain(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
        return f"{field} must be {word} {ctx[key]}, got {show(value)}", None

    return explain


def _enum(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    choices = list(Hardware.__members__) if field == "hardware" else [member.value for member in ModelType]
    kind = "a hardware name" if field == "hardware" else "a model type"
    return f"{show(value)} is not {kind}", did_you_mean(value, choices) or f"one of: {', '.join(choices)}"


def _literal(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    if field == "apiVersion":
        return f"unknown apiVersion {show(value)}", "this conduit reads `conduit/v1`"
    if not isinstance(value, str):
        return f"python_version must be written as a string, got {show(value)}", 'write it in quotes: "3.10"'
    if value == "3.8":
        return "Python 3.8 is not supported: its support ended in September 2023", 'use "3.9" or later'
    return f"Python {value} is not supported", f"one of: {', '.join(PYTHON_VERSIONS)}"


def _pattern(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    if field == "name":
        return name_problem(value) or f"name {show(value)} is not allowed", f"did you mean `{suggest_name(value)}`?"
    if field == "project":
        return project_problem(value) or f"project {show(value)} is not allowed", f"did you mean `{suggest_project(value)}`?"
    if field == "url":
        return f"url {show(value)} must be an http:// or https:// URL", "e.g. `http://message-dumper.default.svc.cluster.local`"
    return f"hook {show(value)} must be written `file.py:function`", "e.g. `hooks.py:to_labels`"


def _too_short(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    return "flow is empty; list at least one stage", "e.g. `flow: [sklearn, model.pkl]`"


def _list(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    return f"flow must be one stage or a list of stages, got {show(value)}", "e.g. `flow: [sklearn, model.pkl]`"


def _mapping(field: str, value: Any, ctx: dict, path: KeyPath) -> Message:
    if path[:1] == ("flow",) and len(path) == 2:
        return (
            f"a stage must be a mapping or a list [model_type, path], got {show(value)}",
            "e.g. `{model_type: sklearn, path: model.pkl}` or `[sklearn, model.pkl]`",
        )
    return f"{field} must be a mapping, got {show(value)}", None


_EXPLAIN: dict[str, Callable[..., Message]] = {
    "missing": _missing,
    "extra_forbidden": _unknown_key,
    "int_type": _typed("a whole number"),
    "int_from_float": _typed("a whole number"),
    "float_type": _typed("a number"),
    "bool_type": _typed("true or false"),
    "string_type": _typed("text", "put it in quotes"),
    "greater_than_equal": _bound("at least", "ge"),
    "less_than_equal": _bound("at most", "le"),
    "enum": _enum,
    "literal_error": _literal,
    "string_pattern_mismatch": _pattern,
    "string_too_long": _pattern,
    "too_short": _too_short,
    "list_type": _list,
    "model_type": _mapping,
    "model_attributes_type": _mapping,
    "dict_type": _mapping,
}
