"""`plan(paths, changed_since)`: for every manifest under `paths`, what applying would do.

A deployment is known by its `name`, not by where its manifest lives: moving a manifest (with
its files) is no change, and renaming `name` deletes the old deployment and creates the new one.
Each side of the comparison (the commit `changed_since`, and the working tree) gives every
deployment a fingerprint: the manifest's content, and the content of each file it reads, keyed
by the path the manifest writes. The first difference found is the reason:

    manifest changed > model artifact changed > requirements or hook file changed

Without `changed_since` there is no baseline and every manifest is new.
"""
from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

import git

from conduit.errors import UsageError
from conduit.gitops.deps import Dependencies, is_manifest, read_dependencies
from conduit.gitops.trees import CommitSide, EmptySide, Side, WorkingTreeSide, checkout_root, folder_id

ACTIONS = ("create", "update", "delete", "unchanged")
NO_COMMIT = "0" * 40  # what CI reports as the "before" of a branch's first push


@dataclass(frozen=True)
class PlanEntry:
    action: str  # one of ACTIONS
    name: str
    manifest_path: str  # absolute; for a delete, where the removed manifest was
    reason: str
    path: str  # the manifest relative to the repository root, for people

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Fingerprint:
    """One deployment on one side."""

    path: str
    manifest: Optional[str]
    artifacts: dict[str, Optional[str]]
    support: dict[str, Optional[str]]


def plan(
    paths: Iterable[Union[str, Path]] = (),
    changed_since: Optional[str] = None,
    repo: Union[git.Repo, str, Path, None] = None,
) -> list[PlanEntry]:
    paths = list(paths) or [Path.cwd()]
    repository = open_repo(repo, paths[0])
    root = checkout_root(repository).resolve()
    scopes = [scope_of(root, path) for path in paths]
    before = fingerprints(baseline(repository, changed_since), scopes, strict=False)
    after = fingerprints(WorkingTreeSide(repository), scopes, strict=True)
    entries = [decide(name, before.get(name), after.get(name), root) for name in set(before) | set(after)]
    return sorted(entries, key=lambda e: (ACTIONS.index(e.action), e.path, e.name))


def open_repo(repo: Union[git.Repo, str, Path, None], start: Union[str, Path]) -> git.Repo:
    if isinstance(repo, git.Repo):
        return repo
    where = Path(repo or start)
    try:
        return git.Repo(where if where.is_dir() else where.parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{where} is not inside a git repository: conduit plan compares git commits") from None


def scope_of(root: Path, path: Union[str, Path]) -> str:
    """A path given on the command line, relative to the repository root ('' for all of it)."""
    try:
        relative = Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        raise UsageError(f"{path} is outside the repository at {root}") from None
    return "" if relative == "." else relative


def baseline(repo: git.Repo, changed_since: Optional[str]) -> Side:
    if changed_since is None or changed_since.strip("0") == "":
        return EmptySide()
    try:
        return CommitSide(repo.commit(changed_since))
    except (git.BadName, git.BadObject, ValueError):
        raise UsageError(
            f"unknown git ref {changed_since!r} (in CI, check out with fetch-depth: 0 so older commits are there)"
        ) from None


def fingerprints(side: Side, scopes: list[str], strict: bool) -> dict[str, Fingerprint]:
    """Every deployment on one side, by name. `strict` (the working tree): a manifest without a
    name, or two manifests with one name, is an error; on the old side they are passed over."""
    found: dict[str, Fingerprint] = {}
    for path in sorted(p for p in side.files() if is_manifest(p) and _in_scope(p, scopes)):
        deps = _dependencies(side, path)
        if deps is None or deps.name in found:
            if strict:
                raise UsageError(_unplannable(path, deps, found))
            continue
        found[deps.name] = fingerprint(side, path, deps)
    return found


def _dependencies(side: Side, path: str) -> Optional[Dependencies]:
    try:
        return read_dependencies(side.read_text(path), path)
    except UnicodeDecodeError:
        return None


def _unplannable(path: str, deps: Optional[Dependencies], found: dict[str, Fingerprint]) -> str:
    if deps is None:
        return f"{path}: no deployment name can be read from it (run `conduit validate {path}`)"
    return f"two manifests deploy {deps.name!r}: {found[deps.name].path} and {path}; names must be unique"


def _in_scope(path: str, scopes: list[str]) -> bool:
    return any(scope == "" or path == scope or path.startswith(scope + "/") for scope in scopes)


def fingerprint(side: Side, path: str, deps: Dependencies) -> Fingerprint:
    folder = posixpath.dirname(path)
    located = {rel: posixpath.normpath(posixpath.join(folder, rel)) for rel in deps.artifacts + deps.support}
    wanted = [p for p in side.files() if p == path or any(p == at or p.startswith(at + "/") for at in located.values())]
    ids = side.content_ids(wanted)

    def content(rel: str) -> Optional[str]:
        return ids.get(located[rel]) or folder_id(ids, located[rel])

    return Fingerprint(
        path,
        ids.get(path),
        {rel: content(rel) for rel in deps.artifacts},
        {rel: content(rel) for rel in deps.support},
    )


def decide(name: str, old: Optional[Fingerprint], new: Optional[Fingerprint], root: Path) -> PlanEntry:
    if new is None:
        assert old is not None  # the name comes from one side or the other
        return _entry("delete", name, old, "manifest removed", root)
    if old is None:
        return _entry("create", name, new, "new manifest", root)
    reason = change_reason(old, new)
    return _entry("update" if reason else "unchanged", name, new, reason or "nothing changed", root)


def change_reason(old: Fingerprint, new: Fingerprint) -> Optional[str]:
    if old.manifest != new.manifest:
        return "manifest changed"
    if old.artifacts != new.artifacts:
        return "model artifact changed"
    if old.support != new.support:
        return "requirements or hook file changed"
    return None


def _entry(action: str, name: str, where: Fingerprint, reason: str, root: Path) -> PlanEntry:
    return PlanEntry(action, name, str(root / where.path), reason, where.path)
