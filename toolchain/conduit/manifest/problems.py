"""What validation reports: a `Problem` per finding, and `ManifestInvalid` holding all of them.

A problem knows where it is (file, line, column, key path) so editors, the CLI and GitHub
annotations can point at the offending line, and carries a hint a person can act on.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from conduit.errors import ConduitError

KeyPath = tuple[Union[str, int], ...]


def format_path(path: KeyPath) -> str:
    """`('flow', 1, 'path')` -> `flow[1].path`, the way people point at a key."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def show(value: Any) -> str:
    """A value as the user wrote it: strings in quotes, None as `nothing`, booleans as YAML spells them."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return str(value)


def did_you_mean(word: Any, choices: Iterable[str]) -> Optional[str]:
    """`did you mean `max_replicas`?` for a near miss (case-insensitive), else None."""
    if not isinstance(word, str):
        return None
    by_folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return f"did you mean `{by_folded[close[0]]}`?" if close else None


@dataclass(frozen=True)
class Problem:
    message: str
    path: KeyPath = ()
    value: Any = None
    hint: Optional[str] = None
    file: Optional[str] = None
    line: Optional[int] = None  # 1-based, like editors
    column: Optional[int] = None  # 1-based
    severity: str = "error"  # or "warning"
    at_key: bool = field(default=False, compare=False, repr=False)  # point at the key, not its value

    @property
    def key(self) -> str:
        return format_path(self.path)

    def __str__(self) -> str:
        where = [str(part) for part in (self.file, self.line, self.column) if part is not None]
        parts = [":".join(where)] if where else []
        if self.severity == "warning":
            parts.append("warning")
        if self.path:
            parts.append(self.key)
        text = ": ".join(parts + [self.message])
        return f"{text} (hint: {self.hint})" if self.hint else text


class ManifestInvalid(ConduitError):
    """A manifest with one or more problems; `problems` holds every one found, not just the first."""

    http_status = 400
    type = "invalid_manifest"

    def __init__(self, problems: Sequence[Problem], warnings: Sequence[Problem] = ()):
        self.problems = list(problems)
        self.warnings = list(warnings)
        count = len(self.problems)
        source = self.problems[0].file if self.problems and self.problems[0].file else "the manifest"
        heading = f"{source} is invalid ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([heading] + [f"  {problem}" for problem in self.problems]))
