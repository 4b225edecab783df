"""The two sides a plan compares, as git sees them.

A side lists repository-relative files (posix paths) and gives each a content id: the git blob id
of its content. The working tree's ids come from `git hash-object`, which applies the same clean
filters as `git add` (Git LFS included), so an unchanged file has the same id on both sides even
when it was moved. Ignored files are on neither side: an artifact git does not track (a model
made by a training script in CI) can never be seen to change.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Protocol

import git

from conduit.errors import UsageError


class Side(Protocol):
    def files(self) -> set[str]: ...

    def read_text(self, path: str) -> str: ...

    def content_ids(self, paths: Iterable[str]) -> dict[str, str]: ...


class EmptySide:
    """No baseline: nothing was deployed before."""

    def files(self) -> set[str]:
        return set()

    def read_text(self, path: str) -> str:
        raise FileNotFoundError(path)

    def content_ids(self, paths: Iterable[str]) -> dict[str, str]:
        return {}


class CommitSide:
    def __init__(self, commit: git.Commit) -> None:
        self.commit = commit
        self._blobs = {str(item.path): item for item in commit.tree.traverse() if isinstance(item, git.Blob)}

    def files(self) -> set[str]:
        return set(self._blobs)

    def read_text(self, path: str) -> str:
        return self._blobs[path].data_stream.read().decode("utf-8")

    def content_ids(self, paths: Iterable[str]) -> dict[str, str]:
        return {path: self._blobs[path].hexsha for path in paths if path in self._blobs}


def checkout_root(repo: git.Repo) -> Path:
    """The root of the repository's checkout: plans compare files, so a bare repository has none."""
    if repo.working_tree_dir is None:
        raise UsageError(f"{repo.git_dir} is a bare repository: run conduit plan in a checkout of it")
    return Path(repo.working_tree_dir)


class WorkingTreeSide:
    """Tracked files still on disk, plus new files git does not ignore."""

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self.root = checkout_root(repo)
        listed = repo.git.ls_files("-z", "--cached", "--others", "--exclude-standard").split("\0")
        self._files = {path for path in listed if path and (self.root / path).is_file()}

    def files(self) -> set[str]:
        return set(self._files)

    def read_text(self, path: str) -> str:
        return (self.root / path).read_text(encoding="utf-8")

    def content_ids(self, paths: Iterable[str]) -> dict[str, str]:
        wanted = sorted(path for path in paths if path in self._files)
        if not wanted:
            return {}
        ids = []
        for start in range(0, len(wanted), 500):  # keeps each command line short
            ids += self.repo.git.hash_object("--", *wanted[start : start + 500]).split()
        return dict(zip(wanted, ids))


def folder_id(ids: dict[str, str], folder: str) -> Optional[str]:
    """One id for every file under `folder` (names relative to it, so a moved folder keeps it)."""
    prefix = folder.rstrip("/") + "/"
    inside = sorted((path[len(prefix):], blob) for path, blob in ids.items() if path.startswith(prefix))
    if not inside:
        return None
    return hashlib.sha1("\n".join(f"{name} {blob}" for name, blob in inside).encode()).hexdigest()
