"""Importing a manifest's hook files the way the Bento will, before any build.

Each hook is imported by `conduit.runtimes.hooks.import_in_subprocess`: the loader the Bento uses, in
a child Python whose working directory is the manifest's folder, stopped after IMPORT_TIMEOUT_S. A
hook's code runs, but never in the validating process; a manifest without hooks starts no child,
and one manifest state is checked once per process however often it is loaded.

Decision: a hook that imports a module missing here gets a warning, not an error, where the Bento's
environment will install it (`requirements_file` names that distribution, or the flow's model
types bring it, as a torch flow brings torch): this environment need not have it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from conduit.manifest.problems import KeyPath, Problem
from conduit.model_types import MODEL_TYPES, ModelType
from conduit.runtimes.hooks import import_in_subprocess

IMPORT_TIMEOUT_S = 30.0
MISSING_MODULE = re.compile(r"No module named '([^']+)'")
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

_checked: dict[tuple, Optional[str]] = {}  # (spec, folder, file stamp) -> why it fails to import, or None


def hook_import_problems(
    hooks: Sequence[tuple[KeyPath, str]], base_dir: Path, requirements: Any, model_types: Sequence[ModelType]
) -> list[Problem]:
    """Problems (and warnings) for the hooks, each `(key path, "file.py:function")`, that fail to import."""
    found = [(at, spec, _failure(spec, base_dir)) for at, spec in hooks]
    if not any(failure for *_, failure in found):
        return []
    installed = _required_names(base_dir, requirements) | _brought_by(model_types)
    return [_problem(at, spec, failure, installed) for at, spec, failure in found if failure]


def _failure(spec: str, base_dir: Path) -> Optional[str]:
    stat = (base_dir / spec.rpartition(":")[0]).stat()
    key = (spec, str(base_dir), stat.st_mtime_ns, stat.st_size)
    if key not in _checked:
        _checked[key] = import_in_subprocess(spec, base_dir, timeout_s=IMPORT_TIMEOUT_S)
    return _checked[key]


def _problem(at: KeyPath, spec: str, failure: str, required: set[str]) -> Problem:
    file_name = spec.rpartition(":")[0]
    reason = failure.removeprefix(f"hook {spec}: ").removeprefix(f"importing {Path(file_name).name} failed: ")
    missing = MISSING_MODULE.search(reason)
    module = missing.group(1).split(".")[0] if missing else None
    if module and _normalised(module) in required:
        return Problem(
            f"hook file '{file_name}' imports `{module}`, which is not installed here",
            at, spec, "the Bento will install it (requirements_file or a model type names it); not checked further",
            severity="warning",
        )  # fmt: skip
    hint = f"add `{module}` to requirements_file, or install it" if module else None
    return Problem(f"hook file '{file_name}' fails to import: {reason}", at, spec, hint)


def _required_names(base_dir: Path, requirements: Any) -> set[str]:
    """The distributions `requirements_file` names, normalised (`Foo_Bar` -> `foo-bar`)."""
    if not isinstance(requirements, str):
        return set()
    try:
        lines = (base_dir / requirements).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    matches = (REQUIREMENT_NAME.match(line) for line in lines if not line.lstrip().startswith(("#", "-")))
    return {_normalised(match.group(1)) for match in matches if match}


def _brought_by(model_types: Sequence[ModelType]) -> set[str]:
    """The modules and distributions the flow's model types install in the Bento, normalised."""
    infos = [MODEL_TYPES[kind] for kind in model_types]
    return {_normalised(name.split(".")[0]) for info in infos for name in (*info.imports, *info.packages)}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
