"""Phase 3, semantics: what the schema cannot say: referenced files exist and fit the model type,
hooks name a real function, replicas and memory make sense together, deprecated hardware.

Runs on the raw data even when the schema phase found problems, so one run reports everything;
each check skips values the schema phase already rejected. Hook files are read with `ast`,
never imported: validating must not run user code.
"""

from __future__ import annotations

import ast
import enum
import math
import re
from pathlib import Path
from typing import Any, Optional

from conduit.hardware import HARDWARE, Hardware
from conduit.manifest.model import (
    HOOK_KEYS,
    HOOK_PATTERN,
    MEMORY_MAX_GB,
    Manifest,
    default_hardware,
    stage_list,
    stage_mapping,
)
from conduit.manifest.problems import KeyPath, Problem, did_you_mean
from conduit.model_types import MODEL_TYPES, ModelType

HUGGINGFACE_ONLY = ("task", "model", "options")


def check_meaning(data: dict, base_dir: Path) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) about what the manifest means."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for index, stage in _stages(data):
        problems += _stage_problems(("flow", index), stage, base_dir)
        warnings += _model_folder_warnings(("flow", index), stage, base_dir)
    problems += _replica_problems(data) + _memory_problems(data)
    problems += _file_problems(("requirements_file",), data.get("requirements_file"), base_dir)
    return problems, warnings + _hardware_warnings(data)


def _member(kind: type[enum.Enum], value: Any) -> Optional[Any]:
    """The enum member `value` names (by value or member name), or None."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value in kind.__members__:
        return kind[value]
    try:
        return kind(value)
    except (ValueError, TypeError):
        return None


def _number(value: Any) -> bool:
    """A number the schema phase accepted (NaN and infinity it did not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _stages(data: dict) -> list[tuple[int, dict]]:
    flow = stage_list(data.get("flow"))
    if not isinstance(flow, (list, tuple)):
        return []
    stages = [(index, stage_mapping(stage)) for index, stage in enumerate(flow)]
    return [(index, stage) for index, stage in stages if isinstance(stage, dict)]


def _stage_problems(at: KeyPath, stage: dict, base_dir: Path) -> list[Problem]:
    model_type = _member(ModelType, stage.get("model_type"))
    if model_type is None:
        return []
    if model_type == ModelType.HUGGINGFACE_PIPELINE:
        problems = _huggingface_problems(at, stage)
    else:
        problems = _artifact_problems(at, model_type, stage, base_dir)
    for hook in HOOK_KEYS:
        problems += _hook_problems(at + (hook,), stage.get(hook), base_dir)
    return problems


def _huggingface_problems(at: KeyPath, stage: dict) -> list[Problem]:
    problems = [
        Problem(f"a huggingface_pipeline stage needs `{key}`", at + (key,), hint=f"e.g. `{key}: {example}`")
        for key, example in (("task", "text-classification"), ("model", "hf_model"))
        if stage.get(key) is None
    ]
    if stage.get("path") is not None:
        problems.append(
            Problem(
                "a huggingface_pipeline stage takes no `path`",
                at + ("path",),
                stage["path"],
                "name the model with `model:` (a local folder or a hub id)",
                at_key=True,
            )
        )
    return problems


def _artifact_problems(at: KeyPath, model_type: ModelType, stage: dict, base_dir: Path) -> list[Problem]:
    problems = [
        Problem(f"`{key}` is only for huggingface_pipeline stages", at + (key,), stage[key], "remove it", at_key=True)
        for key in HUGGINGFACE_ONLY
        if stage.get(key) not in (None, {})
    ]
    path = stage.get("path")
    if path is None:
        problems.append(
            Problem(
                f"a {model_type.value} stage needs `path`: {_expected(model_type)}",
                at + ("path",),
                hint="e.g. `path: model.pkl`" if not MODEL_TYPES[model_type].folder else None,
            )
        )
    elif isinstance(path, str):
        problems += _artifact_path_problems(at + ("path",), model_type, path, base_dir)
    return problems


def _expected(model_type: ModelType) -> str:
    """`a .pkl file`, `a .pkl or .pt file`, `a .pkl, .json or .ubj file`, or the spaCy folder."""
    if MODEL_TYPES[model_type].folder:
        return "a folder saved by nlp.to_disk"
    *others, last = MODEL_TYPES[model_type].suffixes
    return f"a {', '.join(others)} or {last} file" if others else f"a {last} file"


def _artifact_path_problems(at: KeyPath, model_type: ModelType, path: str, base_dir: Path) -> list[Problem]:
    target = base_dir / path
    wants_folder = MODEL_TYPES[model_type].folder
    if not wants_folder and target.suffix.lower() not in MODEL_TYPES[model_type].suffixes:
        message = f"'{path}' does not fit model_type {model_type.value}: it expects {_expected(model_type)}"
        return [Problem(message, at, path)]
    if not target.exists():
        kind = "folder" if wants_folder else "file"
        return [Problem(f"{kind} '{path}' not found next to the manifest", at, path, f"looked for {target}")]
    if target.is_dir() != wants_folder:
        kind = "folder" if target.is_dir() else "file"
        return [
            Problem(f"'{path}' is a {kind}; model_type {model_type.value} expects {_expected(model_type)}", at, path)
        ]
    return []


def _file_problems(at: KeyPath, path: Any, base_dir: Path, what: str = "file") -> list[Problem]:
    if not isinstance(path, str):
        return []
    target = base_dir / path
    if not target.is_file():
        return [Problem(f"{what} '{path}' not found next to the manifest", at, path, f"looked for {target}")]
    return []


def _hook_problems(at: KeyPath, hook: Any, base_dir: Path) -> list[Problem]:
    if not isinstance(hook, str) or not re.match(HOOK_PATTERN, hook):
        return []
    file_name, function = hook.rsplit(":", 1)
    missing = _file_problems(at, file_name, base_dir, what="hook file")
    if missing:
        return missing
    try:
        tree = ast.parse((base_dir / file_name).read_text(encoding="utf-8"), filename=file_name)
    except (SyntaxError, UnicodeDecodeError) as error:
        detail = f"{error.msg} (line {error.lineno})" if isinstance(error, SyntaxError) else "it is not UTF-8 text"
        return [Problem(f"hook file '{file_name}' does not parse: {detail}", at, hook)]
    functions = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if function in functions:
        return []
    hint = did_you_mean(function, functions) or (
        f"functions there: {', '.join(functions)}" if functions else "it defines no top-level functions"
    )
    return [Problem(f"hook file '{file_name}' has no top-level function `{function}`", at, hook, hint)]


def _model_folder_warnings(at: KeyPath, stage: dict, base_dir: Path) -> list[Problem]:
    """A Hugging Face `model` that is not a local folder must already sit in the offline cache."""
    model = stage.get("model")
    if _member(ModelType, stage.get("model_type")) != ModelType.HUGGINGFACE_PIPELINE or not isinstance(model, str):
        return []
    if (base_dir / model).is_dir():
        return []
    message = (
        f"model '{model}' is not a folder next to the manifest; it must already be in the local Hugging Face cache"
    )
    return [Problem(message, at + ("model",), model, "save it here with save_pretrained", severity="warning")]


def _default(field: str) -> Any:
    return Manifest.model_fields[field].default


def _replica_problems(data: dict) -> list[Problem]:
    low, high = data.get("min_replicas", _default("min_replicas")), data.get("max_replicas", _default("max_replicas"))
    if not (_number(low) and _number(high)) or low <= high:
        return []
    return [
        Problem(
            f"min_replicas ({low}) is greater than max_replicas ({high})",
            ("min_replicas",),
            low,
            f"raise max_replicas to {low} or lower min_replicas",
        )
    ]


def _resolved_hardware(data: dict) -> Optional[Hardware]:
    if data.get("hardware") is not None:
        return _member(Hardware, data["hardware"])
    model_types = [_member(ModelType, stage.get("model_type")) for _, stage in _stages(data)]
    return default_hardware(model_types) if model_types and None not in model_types else None


def _memory_problems(data: dict) -> list[Problem]:
    memory, hardware = data.get("memory", _default("memory")), _resolved_hardware(data)
    if not _number(memory) or hardware is None:
        return []
    limit = HARDWARE[hardware].memory_max_gb
    if memory <= limit or memory > MEMORY_MAX_GB:
        return []  # fine, or already refused by the schema's upper bound
    return [
        Problem(
            f"memory {float(memory)} GB is more than {hardware.value} allows (at most {limit} GB)",
            ("memory",),
            memory,
            f"lower memory to {limit} or choose larger hardware",
        )
    ]


def _hardware_warnings(data: dict) -> list[Problem]:
    hardware = _member(Hardware, data.get("hardware"))
    replacement = HARDWARE[hardware].deprecated_use if hardware is not None else None
    if replacement is None:
        return []
    spec = HARDWARE[replacement]
    return [
        Problem(
            f"hardware {hardware.value} is deprecated",
            ("hardware",),
            hardware.value,
            f"use {replacement.value} ({spec.gpu}, {spec.vram_gb} GB)",
            severity="warning",
        )
    ]
