"""Phase 3, semantics: what the schema cannot say: referenced files exist and fit the model type,
hooks name a real function, replicas and memory make sense together, deprecated hardware.

Runs on the raw data even when the schema phase found problems, so one run reports everything;
each check skips values the schema phase already rejected.

What the build would trip over is caught here, before any build: artifacts are read by
`conduit.artifacts` (a pickle's opcodes, never unpickled), a Hugging Face task is looked up in the
installed transformers' task list (`conduit.manifest.tasks`, read offline), and hook files are
parsed with `ast`, then, for a manifest from a file, imported in a child process
(`conduit.manifest.hook_imports`): validating never runs user code in its own process.

Two checks look across the stages: a requirements_file pin that contradicts the library version
an artifact records (`conduit.artifacts.pins`: the Bento pins the artifact's), and weights
that do not fit, or nearly fill, the GPU's VRAM (`conduit.manifest.fit`).
"""

from __future__ import annotations

import ast
import enum
import functools
import math
import re
from pathlib import Path
from typing import Any, Optional

from conduit.artifacts import TYPE_FRAMEWORKS, Artifact, inspect_artifact, model_type_of, pins
from conduit.hardware import HARDWARE, Hardware
from conduit.manifest.confine import escape, names_local_path
from conduit.manifest.fit import verdict, weights_bytes
from conduit.manifest.hook_imports import hook_import_problems
from conduit.manifest.model import (
    HOOK_KEYS,
    HOOK_PATTERN,
    MEMORY_MAX_GB,
    Batching,
    Manifest,
    default_hardware,
    stage_list,
    stage_mapping,
)
from conduit.manifest.problems import KeyPath, Problem, did_you_mean, format_path
from conduit.manifest.tasks import transformers_tasks
from conduit.model_types import MODEL_TYPES, ModelType

HUGGINGFACE_ONLY = ("task", "model", "options")
# Kubernetes keeps namespaces starting so for itself (kube-system, kube-public, kube-node-lease).
RESERVED_PROJECT_PREFIX = "kube-"
RESAVE = {
    "pickle": "save the model again (pickle.dump, joblib.dump or cloudpickle.dump) and copy the whole file",
    "torch-save": "save it with torch.jit.script(model).save(path), or cloudpickle the module to a .pkl",
}


def check_meaning(data: dict, base_dir: Path, import_hooks: bool = False) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) about what the manifest means. `import_hooks`: also import each hook
    file in a child process (a manifest from a file; `Conduit(...)` has imported its hooks already)."""
    found: list[Problem] = []
    for index, stage in _stages(data):
        found += _stage_problems(("flow", index), stage, base_dir)
        found += _model_folder_problems(("flow", index), stage, base_dir)
    found += _replica_problems(data) + _memory_problems(data) + _hardware_warnings(data)
    found += _project_problems(data) + _concurrency_warnings(data)
    requirements_problems = _file_problems(("requirements_file",), data.get("requirements_file"), base_dir)
    found += requirements_problems + _fit_problems(data, base_dir)
    if not requirements_problems:
        found += _pin_problems(data, base_dir)
    if import_hooks:
        hooks, model_types = _importable_hooks(data, base_dir), _model_types(data)
        requirements = None if requirements_problems else data.get("requirements_file")  # never read one outside
        found += hook_import_problems(hooks, base_dir, requirements, model_types)
    return [p for p in found if p.severity != "warning"], [p for p in found if p.severity == "warning"]


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
    problems += _task_problems(at + ("task",), stage.get("task"), stage.get("options"))
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


def _task_problems(at: KeyPath, task: Any, options: Any) -> list[Problem]:
    """A task the installed transformers does not know (or removed); a warning when it cannot tell."""
    if not isinstance(task, str):
        return []
    tasks = transformers_tasks()
    if tasks is None:
        hint = "install conduit-deploy[huggingface] here to check it before the build"
        return [Problem(f"task '{task}' could not be checked: transformers is not installed here", at, task, hint,
                        severity="warning")]  # fmt: skip
    if tasks.knows(task):
        return []
    removal = tasks.removal(task)
    if removal is not None:
        return [Problem(f"task '{task}' was removed from transformers {tasks.version}", at, task, removal)]
    hint = did_you_mean(task, tasks.names) or f"tasks: {', '.join(tasks.names)}"
    if isinstance(options, dict) and options.get("trust_remote_code") is True:
        message = f"'{task}' is not a task transformers {tasks.version} knows; the model's own code must define it"
        return [Problem(message, at, task, hint, severity="warning")]
    return [Problem(f"'{task}' is not a Hugging Face pipeline task in transformers {tasks.version}", at, task, hint)]


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
    outside = _outside_problems(at, path, base_dir)
    if outside:
        return outside
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
    return _content_problems(at, model_type, path, target)


def _content_problems(at: KeyPath, model_type: ModelType, path: str, target: Path) -> list[Problem]:
    """What is inside the file: a pickle that would not load, a `.pt` that torch.jit cannot read
    (errors), another framework's model (a warning: the opcodes tell modules, not intent)."""
    artifact = None if target.is_dir() else _inspected(target)
    if artifact is None:
        return []
    if artifact.problem:
        return [Problem(f"'{path}' {artifact.problem}", at, path, RESAVE.get(artifact.format, RESAVE["pickle"]))]
    expected = TYPE_FRAMEWORKS[model_type]
    if artifact.framework is None or artifact.framework == expected:
        return []
    fits = model_type_of(artifact)
    message = f"'{path}' holds a {artifact.framework} model, but model_type {model_type.value} serves {expected} models"
    hint = f"model_type: {fits.value}" if fits else None
    return [Problem(message, at, path, hint, severity="warning")]


def _inspected(target: Path) -> Optional[Artifact]:
    """What the artifact holds, read once per validation even when two checks ask (a pickle may be big)."""
    stat = target.stat()
    return _inspect_cached(str(target), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _inspect_cached(target: str, _mtime_ns: int, _size: int) -> Optional[Artifact]:
    return inspect_artifact(Path(target), import_classes=False)


def _artifacts(data: dict, base_dir: Path) -> list[tuple[KeyPath, ModelType, Path, dict]]:
    """(key path, model type, file or folder, options) of every stage's local artifact that
    exists inside the manifest's tree (the checks above report the others)."""
    found: list[tuple[KeyPath, ModelType, Path, dict]] = []
    for index, stage in _stages(data):
        model_type = _member(ModelType, stage.get("model_type"))
        key = "model" if model_type == ModelType.HUGGINGFACE_PIPELINE else "path"
        written = stage.get(key)
        if model_type is None or not isinstance(written, str) or escape(written, base_dir) is not None:
            continue
        target = base_dir / written
        if target.exists() and (key == "path" or target.is_dir()):
            options = stage.get("options")
            found.append((("flow", index, key), model_type, target, options if isinstance(options, dict) else {}))
    return found


def _fit_problems(data: dict, base_dir: Path) -> list[Problem]:
    """All the stages' weights against the GPU's VRAM (they share one process, on one GPU)."""
    hardware = _resolved_hardware(data)
    if hardware is None or not HARDWARE[hardware].is_gpu:
        return []
    weighed = [(at, weights_bytes(target, options)) for at, _kind, target, options in _artifacts(data, base_dir)]
    found = verdict(sum(size for _at, size in weighed), hardware)
    if found is None:
        return []
    severity, message, hint = found
    at = ("hardware",) if data.get("hardware") is not None else max(weighed, key=lambda pair: pair[1])[0]
    return [Problem(message, at, data.get("hardware") or hardware.value, hint, severity=severity)]


def _pin_problems(data: dict, base_dir: Path) -> list[Problem]:
    """A requirements_file pin the artifact's own library version does not satisfy."""
    written = data.get("requirements_file")
    if not isinstance(written, str) or escape(written, base_dir) is not None:
        return []
    text = (base_dir / written).read_text(encoding="utf-8", errors="replace")
    problems = []
    for at, _kind, target, _options in _artifacts(data, base_dir):
        artifact = _inspected(target)
        for wanted, library, version in pins.contradictions(text, artifact.versions if artifact else {}):
            problems.append(Problem(
                f"requirements_file pins {wanted}, but '{target.name}' ({format_path(at)}) was written by {library} {version}",
                ("requirements_file",), written,
                f"pin {library}=={version} or leave {wanted.name} out (conduit pins the artifact's version), "
                f"or save the model again with {wanted}",
            ))  # fmt: skip
    return problems


def _outside_problems(at: KeyPath, path: str, base_dir: Path, value: Any = None) -> list[Problem]:
    """A path leading out of the manifest's tree (`conduit.manifest.confine`); `value`: as written, if not `path`."""
    found = escape(path, base_dir)
    return [Problem(found.message, at, value or path, found.hint)] if found else []


def _file_problems(at: KeyPath, path: Any, base_dir: Path, what: str = "file", value: Any = None) -> list[Problem]:
    if not isinstance(path, str):
        return []
    outside = _outside_problems(at, path, base_dir, value)
    if outside:
        return outside
    target = base_dir / path
    if not target.is_file():
        return [Problem(f"{what} '{path}' not found next to the manifest", at, path, f"looked for {target}")]
    return []


def _hook_problems(at: KeyPath, hook: Any, base_dir: Path) -> list[Problem]:
    if not isinstance(hook, str) or not re.match(HOOK_PATTERN, hook):
        return []
    file_name, function = hook.rsplit(":", 1)
    missing = _file_problems(at, file_name, base_dir, what="hook file", value=hook)
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


def _model_types(data: dict) -> list[ModelType]:
    found = [_member(ModelType, stage.get("model_type")) for _, stage in _stages(data)]
    return [kind for kind in found if kind is not None]


def _importable_hooks(data: dict, base_dir: Path) -> list[tuple[KeyPath, str]]:
    """The hooks that pass the checks above, to import."""
    return [
        (("flow", index, key), stage[key])
        for index, stage in _stages(data)
        for key in HOOK_KEYS
        if isinstance(stage.get(key), str)
        and re.match(HOOK_PATTERN, stage[key])
        and not _hook_problems(("flow", index, key), stage[key], base_dir)
    ]


def _model_folder_problems(at: KeyPath, stage: dict, base_dir: Path) -> list[Problem]:
    """A Hugging Face `model` that names a local folder must stay in the manifest's tree; one that
    is not a local folder must already sit in the offline cache (a warning)."""
    model = stage.get("model")
    if _member(ModelType, stage.get("model_type")) != ModelType.HUGGINGFACE_PIPELINE or not isinstance(model, str):
        return []
    outside = _outside_problems(at + ("model",), model, base_dir) if names_local_path(model, base_dir) else []
    if outside or (base_dir / model).is_dir():
        return outside
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
    known = [model_type for model_type in model_types if model_type is not None]
    return default_hardware(known) if known and len(known) == len(model_types) else None


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
    if hardware is None or replacement is None:
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


def _project_problems(data: dict) -> list[Problem]:
    """A project is a namespace on Kubernetes: one of Kubernetes' own would put a model among its parts."""
    project = data.get("project")
    if not isinstance(project, str) or not project.startswith(RESERVED_PROJECT_PREFIX):
        return []
    suggestion = project.removeprefix(RESERVED_PROJECT_PREFIX) or "default"
    message = f"project '{project}' starts with `{RESERVED_PROJECT_PREFIX}`, which Kubernetes keeps for its own namespaces"
    return [Problem(message, ("project",), project, f"did you mean `{suggestion}`?")]


def _concurrency_warnings(data: dict) -> list[Problem]:
    """A replica that scales out before a batch can fill never batches fully."""
    target, batching = data.get("replica_concurrency"), data.get("batching")
    if not isinstance(batching, dict):
        return []
    size = batching.get("max_batch_size", Batching.model_fields["max_batch_size"].default)
    if not (_number(target) and _number(size)) or target >= size:
        return []
    message = (
        f"replica_concurrency {target} is less than batching.max_batch_size {size}: replicas are added "
        "before a batch can fill"
    )
    hint = f"raise replica_concurrency to {size} or lower max_batch_size to {target}"
    return [Problem(message, ("replica_concurrency",), target, hint, severity="warning")]
