"""Hugging Face pipeline task names, as the installed transformers knows them, read offline.

Importing `transformers.pipelines` takes seconds and pulls in torch, so the task tables
(`SUPPORTED_TASKS`, `TASK_ALIASES`, `REMOVED_TASKS`) are read from its source with `ast` instead:
their keys are plain strings. `None` when transformers is not installed here (the caller warns
that it could not check) or when its source no longer holds those tables.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

TABLES = ("SUPPORTED_TASKS", "TASK_ALIASES", "REMOVED_TASKS")
PARAMETRISED = "translation"  # `translation_en_to_fr` is `translation` with its languages


@dataclass(frozen=True)
class Tasks:
    version: str
    supported: tuple[str, ...]
    aliases: dict[str, str]
    removed: dict[str, str]  # task -> what to use instead, in transformers' words

    @property
    def names(self) -> list[str]:
        return [*self.supported, *self.aliases]

    def knows(self, task: str) -> bool:
        base = PARAMETRISED if task.startswith(PARAMETRISED + "_") else task
        return base in self.supported or base in self.aliases

    def removal(self, task: str) -> Optional[str]:
        return self.removed.get(PARAMETRISED if task.startswith(PARAMETRISED + "_") else task)


@functools.lru_cache(maxsize=1)
def transformers_tasks() -> Optional[Tasks]:
    try:
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    tables = _tables(Path(spec.origin).parent / "pipelines" / "__init__.py")
    if not tables.get("SUPPORTED_TASKS"):
        return None
    return Tasks(
        version=importlib.metadata.version("transformers"),
        supported=tuple(tables["SUPPORTED_TASKS"]),
        aliases={alias: str(task) for alias, task in tables.get("TASK_ALIASES", {}).items()},
        removed={task: str(advice) for task, advice in tables.get("REMOVED_TASKS", {}).items()},
    )


def _tables(source: Path) -> dict[str, dict[str, object]]:
    """`{table name: {key: value or None}}` for the module-level dict literals named in TABLES."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    tables = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.value, ast.Dict):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in TABLES:
            tables[target.id] = _literal_items(node.value)
    return tables


def _literal_items(table: ast.Dict) -> dict[str, object]:
    items: dict[str, object] = {}
    for key, value in zip(table.keys, table.values):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            items[key.value] = value.value if isinstance(value, ast.Constant) else None
    return items
