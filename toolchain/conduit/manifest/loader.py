"""Loading a manifest in named phases: parse -> schema -> semantics -> defaults.

`load(path)` reads `conduit.yaml`; `build(data, base_dir)` is the same pipeline minus parsing,
used by `Conduit(...)`. Every problem from every phase is collected and raised at once as
`ManifestInvalid`; warnings (deprecated hardware, ...) come back beside the manifest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from conduit.errors import UsageError
from conduit.manifest.model import Manifest, is_single_stage, is_stage_tuple
from conduit.manifest.parse import Document, parse
from conduit.manifest.problems import KeyPath, ManifestInvalid, Problem
from conduit.manifest.semantics import check_meaning
from conduit.manifest.shape import check_shape, plain

MANIFEST_NAME = "conduit.yaml"
Warnings = list[Problem]
Check = Callable[[Manifest], list[Problem]]


def load(path: Path | str) -> Manifest:
    """The manifest at `path` (a file, or a folder holding conduit.yaml); raises ManifestInvalid."""
    return load_with_warnings(path)[0]


def load_with_warnings(path: Path | str, checks: Sequence[Check] = ()) -> tuple[Manifest, Warnings]:
    """`checks`: more warnings about the finished manifest (what a target does not honour), placed
    on their lines like the loader's own."""
    file = manifest_file(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestInvalid([Problem("the file is not UTF-8 text", file=str(file), line=1, column=1)]) from None
    document, problems = parse(text, str(file))
    if document is None:
        raise ManifestInvalid(problems)
    return build(document.data, file.parent, document, problems, checks)


def manifest_file(path: Path | str) -> Path:
    """`path` itself, or `path/conduit.yaml` for a folder; a usage error when there is none."""
    file = Path(path)
    if file.is_dir():
        file = file / MANIFEST_NAME
    if not file.is_file():
        raise UsageError(f"no manifest at {file}")
    return file


def build(
    data: dict,
    base_dir: Path | str,
    document: Optional[Document] = None,
    problems: Sequence[Problem] = (),
    checks: Sequence[Check] = (),
) -> tuple[Manifest, Warnings]:
    """Phases schema -> semantics -> defaults on already-parsed data (from YAML or from Python)."""
    base_dir = Path(base_dir).resolve()
    data = plain(data)
    manifest, shape_problems = check_shape(data)
    # A manifest from a file has hooks nothing imported yet; Conduit(...) holds its functions already.
    meaning_problems, warnings = check_meaning(data, base_dir, import_hooks=document is not None)
    later = [problem for problem in [*shape_problems, *meaning_problems] if not _unreadable(problem, document)]
    problems = _placed([*problems, *later], document)
    if problems or manifest is None:
        raise ManifestInvalid(problems, _placed(warnings, document))
    manifest = with_defaults(manifest, base_dir)
    warnings += [warning for check in checks for warning in check(manifest)]
    return manifest, _placed(warnings, document)


def with_defaults(manifest: Manifest, base_dir: Path) -> Manifest:
    """Phase 4, defaults: make implicit choices explicit, so every path to a Manifest compares equal."""
    manifest.hardware = manifest.resolved_hardware
    return manifest.with_base_dir(base_dir)


def _unreadable(problem: Problem, document: Optional[Document]) -> bool:
    """A problem about a value the parse phase could not read (and already reported)."""
    if document is None:
        return False
    path = written_path(document.data, problem.path)
    return any(path[: len(broken)] == broken for broken in document.unreadable)


def _placed(problems: list[Problem], document: Optional[Document]) -> list[Problem]:
    """Give each problem the file, line and column it points at, in the order they appear."""
    if document is None:
        return list(problems)
    placed = [_place(problem, document) for problem in problems]
    return sorted(placed, key=lambda problem: (problem.line, problem.column))


def _place(problem: Problem, document: Document) -> Problem:
    if problem.line is not None:
        return problem
    line, column = document.position(written_path(document.data, problem.path), problem.at_key)
    return dataclasses.replace(problem, file=document.file, line=line, column=column)


def written_path(data: Any, path: KeyPath) -> KeyPath:
    """Where a key path of the model (`flow[0].path`) sits in the YAML as written, which may use
    the single-stage form (`flow: {...}`) or the tuple form (`[sklearn, model.pkl]`)."""
    if path[:1] != ("flow",) or len(path) < 2 or not isinstance(data, dict):
        return path
    flow = data.get("flow")
    written: KeyPath
    if is_single_stage(flow):
        written, stage = ("flow",), flow
    else:
        written, stage = path[:2], _item(flow, path[1])
    rest = path[2:]
    if is_stage_tuple(stage) and rest:
        place: KeyPath = {"model_type": (0,), "path": (1,)}.get(str(rest[0]), (2, rest[0]))
        return written + place + rest[1:]
    return written + rest


def _item(items: Any, index: Any) -> Any:
    if isinstance(items, (list, tuple)) and isinstance(index, int) and index < len(items):
        return items[index]
    return None
