"""What several commands share: loading a manifest for a command, and reading `--data`.

Kept apart from the command modules so that no command imports another command's module.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import click

from conduit.errors import UsageError
from conduit.manifest import load_with_warnings


def load_manifest(path: Path, target: Optional[str] = None, flavour: Optional[str] = None):
    """The manifest, its warnings (deprecated hardware...) shown on stderr so stdout stays clean."""
    return load_warned(path, target, flavour)[0]


def load_warned(path: Path, target: Optional[str] = None, flavour: Optional[str] = None) -> tuple[Any, list[str]]:
    """The manifest and its warnings as printed on stderr; with a `target` (and its `flavour`),
    also what that target does not honour (see `conduit.targets.honoured`)."""
    manifest, problems = load_with_warnings(path, target_checks(target, flavour))
    for problem in problems:
        click.echo(str(problem), err=True)
    return manifest, [str(problem) for problem in problems]


def target_checks(target: Optional[str], flavour: Optional[str] = None) -> tuple:
    if target is None:
        return ()
    from conduit.targets.honoured import check_for

    return (check_for(target, flavour),)


def read_data(data_arg: str) -> str:
    """`--data`: the JSON text itself, `@file.json`, or `-` for stdin."""
    if data_arg == "-":
        return sys.stdin.read()
    if data_arg.startswith("@"):
        path = Path(data_arg[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--data {data_arg}: cannot read {path}: {exc.strerror or exc}") from exc
    return data_arg


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
