"""`conduit validate [PATH...]`: check manifests and print every problem.

PATHs are manifest files or folders; a folder is searched (recursively, skipping hidden folders)
for `conduit.yaml` and `*.conduit.yaml`. Exit 0 when all are valid, 1 when any is invalid, 2 when a
path does not exist or a folder holds no manifest. Problems go to stdout, warnings to stderr (a
warning is not an error: the exit code stays 0), among them each field `--target` (default: local)
does not honour (see `conduit.targets.honoured`). Under GITHUB_ACTIONS=true each problem and warning
is also printed on stdout as a workflow command (`::error file=...,line=...,col=...::message`) so
the pull request shows it on the offending line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import click

from conduit import targets
from conduit.cli import target_options as options
from conduit.cli.common import target_checks
from conduit.errors import UsageError
from conduit.manifest import MANIFEST_NAME, ManifestInvalid, Problem, load_with_warnings

SKIPPED_FOLDERS = {"node_modules", "__pycache__", "site-packages"}


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@options.target("Also warn about fields this target does not honour.")
@options.flavor
def command(paths: tuple[Path, ...], target: str, flavor: Optional[str]) -> int:
    """Check conduit.yaml files (default: the current folder) and report every problem."""
    targets.get(target, flavor=flavor)  # refuses --flavor with the local target, as apply does
    files = [file for path in (paths or (Path("."),)) for file in manifests(path)]
    failed = sum(not _report(file, target, flavor) for file in files)
    if len(files) > 1:
        click.echo(f"{len(files) - failed} valid, {failed} invalid")
    return 1 if failed else 0


def manifests(path: Path) -> list[Path]:
    """The manifests a PATH argument names: itself, or those found under a folder."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"no such file or folder: {path}")
    found = sorted(_walk(path))
    if not found:
        raise UsageError(f"no {MANIFEST_NAME} or *.conduit.yaml under {path}")
    return found


def _walk(folder: Path) -> Iterator[Path]:
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".") and name not in SKIPPED_FOLDERS]
        for name in files:
            if name == MANIFEST_NAME or name.endswith(".conduit.yaml"):
                yield Path(root) / name


def _report(file: Path, target: str, flavor: Optional[str] = None) -> bool:
    try:
        manifest, warnings = load_with_warnings(file, target_checks(target, flavor))
    except ManifestInvalid as invalid:
        _print(invalid.warnings + invalid.problems)
        click.echo(f"{file}: invalid ({len(invalid.problems)} problem{'s' if len(invalid.problems) != 1 else ''})")
        return False
    _print(warnings)
    click.echo(f"{file}: valid ({manifest.name})")
    return True


def _print(problems: list[Problem]) -> None:
    for problem in sorted(problems, key=lambda problem: (problem.line or 0, problem.column or 0)):
        click.echo(str(problem), err=problem.severity == "warning")
        if os.environ.get("GITHUB_ACTIONS") == "true":
            click.echo(annotation(problem))


def annotation(problem: Problem) -> str:
    """A GitHub Actions workflow command that marks the problem's line in the pull request."""
    where = ",".join(
        f"{key}={_escape(str(value), True)}"
        for key, value in (("file", problem.file), ("line", problem.line), ("col", problem.column))
        if value is not None
    )
    text = f"{problem.key}: {problem.message}" if problem.path else problem.message
    if problem.hint:
        text += f" (hint: {problem.hint})"
    return f"::{problem.severity} {where}::{_escape(text, False)}"


def _escape(text: str, is_property: bool) -> str:
    # The escaping GitHub's runner expects for workflow command data and properties.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if is_property else text
