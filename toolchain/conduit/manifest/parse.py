"""Phase 1, parse: YAML text -> plain Python data plus where every key and value was written.

We compose the YAML into nodes and build the data ourselves, so that duplicate keys are all
reported (not only the first), every value keeps its line and column, and an unquoted
`python_version: 3.10` keeps its written text "3.10" instead of becoming the float 3.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from conduit.manifest.problems import KeyPath, Problem

# Keys whose unquoted numbers mean the text as written (3.10 is "3.10", never 3.1).
VERBATIM_KEYS = {("python_version",)}
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MERGE_TAG = "tag:yaml.org,2002:merge"

Position = tuple[int, int]  # 1-based line and column


@dataclass
class Document:
    """Parsed data and where each part of it was written."""

    data: dict
    file: Optional[str]
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)
    unreadable: set[KeyPath] = field(default_factory=set)  # values already reported; later phases skip them

    def position(self, path: KeyPath, at_key: bool = False) -> Position:
        """Where `path` is written (its key, or its value); the nearest written parent if it is absent."""
        if at_key and path in self.keys:
            return self.keys[path]
        while path and path not in self.values:
            path = path[:-1]
        return self.values.get(path, (1, 1))


def parse(text: str, file: Optional[str] = None) -> tuple[Optional[Document], list[Problem]]:
    """The document, or None and the problems that stop us reading it at all."""
    try:
        root = YAML(typ="rt").compose(text)
    except MarkedYAMLError as error:
        return None, _syntax_problems(error, text, file)
    if root is None:
        return None, [
            Problem("the file is empty; a manifest needs at least `name` and `flow`", file=file, line=1, column=1)
        ]
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else f"the single value '{root.value}'"
        line, column = _position(root)
        message = f"the file holds {kind}; a manifest is a mapping of keys such as `name:` and `flow:`"
        return None, [Problem(message, file=file, line=line, column=column)]
    builder = _Builder(file)
    data = builder.build(root, ())
    return Document(data, file, builder.keys, builder.values, builder.unreadable), builder.problems


def _position(node: Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Walks the node tree once, recording positions and problems as it goes."""

    def __init__(self, file: Optional[str]):
        self.file = file
        self.keys: dict[KeyPath, Position] = {}
        self.values: dict[KeyPath, Position] = {}
        self.problems: list[Problem] = []
        self.unreadable: set[KeyPath] = set()
        self._constructor = YAML(typ="safe", pure=True).constructor

    def build(self, node: Node, path: KeyPath) -> Any:
        self.values[path] = _position(node)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)  # YAML has no fourth kind of node
        return self._scalar(node, path)

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in result:
                first_line = self.keys[path + (key,)][0]
                self._problem(
                    key_node,
                    path + (key,),
                    f"duplicate key `{key}` (first written on line {first_line})",
                    hint="keep one of them",
                )
                continue
            self.keys[path + (key,)] = _position(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result

    def _key(self, node: Node, path: KeyPath) -> Optional[str]:
        if node.tag == MERGE_TAG:
            self._problem(node, path, "merge keys (`<<`) are not supported", hint="write the keys out")
            return None
        if not isinstance(node, ScalarNode):
            self._problem(node, path, "a key must be a plain word, not a list or a mapping")
            return None
        return str(node.value)

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        if node.tag == TIMESTAMP_TAG or (path in VERBATIM_KEYS and node.style is None and _is_number(node.value)):
            return node.value
        try:
            return self._constructor.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - ruamel raises several types for tags it does not know
            self._problem(node, path, f"unknown YAML tag `{node.tag}`", hint="remove the tag")
            self.unreadable.add(path)
            return None

    def _problem(self, node: Node, path: KeyPath, message: str, hint: Optional[str] = None) -> None:
        line, column = _position(node)
        self.problems.append(Problem(message, path, None, hint, self.file, line, column))


def _is_number(text: str) -> bool:
    return re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) is not None


TAB_HINT = "replace the tab with spaces"
# Clues in ruamel's wording -> the same problem in plain words, with a hint.
PLAIN_WORDS = {
    "'\\t'": ("a tab stands where YAML expects a value", TAB_HINT),
    "another document": (
        "the file holds more than one YAML document (a second `---`); a manifest is one document",
        "remove the second document",
    ),
}


def _syntax_problems(error: MarkedYAMLError, text: str, file: Optional[str]) -> list[Problem]:
    tabs = _tab_problems(text, file) if "'\\t'" in str(error.problem) else []
    if tabs:
        return tabs
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    context = f" ({error.context})" if error.context else ""
    message, hint = next(
        (words for clue, words in PLAIN_WORDS.items() if clue in str(error.problem)),
        (f"YAML syntax error: {error.problem}{context}", None),
    )
    return [Problem(message, file=file, line=line, column=column, hint=hint)]


def _tab_problems(text: str, file: Optional[str]) -> list[Problem]:
    """One problem per line indented with a tab: YAML indents with spaces only."""
    message = "this line is indented with a tab; YAML indents with spaces only"
    indents = [line[: len(line) - len(line.lstrip(" \t"))] for line in text.splitlines()]
    return [
        Problem(message, file=file, line=number, column=indent.index("\t") + 1, hint=TAB_HINT)
        for number, indent in enumerate(indents, start=1)
        if "\t" in indent
    ]
