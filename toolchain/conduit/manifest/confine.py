"""The confinement rule: every file a manifest names lies inside its own tree.

A bento ships every file its manifest names (artifacts, hooks, the requirements), so a manifest
that could name `/etc/passwd`, `../../.ssh/id_rsa` or a symlink to either would let a pull request
in a GitOps repository copy a runner's secrets into an image. A path therefore must resolve,
symlinks followed, inside the git work tree that holds the manifest (the nearest folder above it
with a `.git` entry: a checkout, a worktree or a submodule), or inside the manifest's folder when
no work tree holds it, and never inside the work tree's `.git` folder (its config holds a CI
checkout's token). A folder artifact (spaCy, Hugging Face) must not hold a link leading out.

Validation (`conduit.manifest.semantics`) reports an escape as a problem; render checks again with
the same function before it copies anything, since files may change between the two.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

GIT = ".git"


@dataclass(frozen=True)
class Escape:
    """A path the manifest wrote that leads out of its tree, and where it leads."""

    written: str  # as the manifest wrote it
    leads_to: Path  # where it resolves, links followed
    root: Path  # the tree it had to stay in
    link: Optional[str] = None  # a link inside a folder artifact that leads out (relative to the manifest)

    @property
    def in_git_folder(self) -> bool:
        """Inside the tree, but in its `.git` folder (an escape only `_inside` calls one)."""
        return self.link is None and self.leads_to.is_relative_to(self.root)

    @property
    def message(self) -> str:
        where = "the git work tree" if (self.root / GIT).exists() else "the manifest's folder"
        if self.in_git_folder:
            return f"'{self.written}' is inside git's own folder {self.root / GIT}: it resolves to {self.leads_to}"
        if self.link is None:
            return f"'{self.written}' is outside {where}: it resolves to {self.leads_to}"
        return f"'{self.written}' holds a link to outside {where}: {self.link} -> {self.leads_to}"

    @property
    def hint(self) -> str:
        if self.in_git_folder:
            return "name a file of the work tree: .git holds git's configuration and credentials, never model files"
        return f"copy it under {self.root} (cp -L follows links): a bento ships every file its manifest names"


def tree_root(base_dir: Path) -> Path:
    """The git work tree holding `base_dir`, found by its `.git` entry (no git needed), else `base_dir`."""
    folder = Path(os.path.realpath(base_dir))
    return next((parent for parent in (folder, *folder.parents) if (parent / GIT).exists()), folder)


def escape(written: str, base_dir: Path) -> Optional[Escape]:
    """How `written` (relative to the manifest's folder, or absolute) leaves the tree; None if it stays."""
    root = tree_root(base_dir)
    target = Path(base_dir, written)
    leads_to = _real(target)
    if not _inside(leads_to, root):
        return Escape(written, leads_to, root)
    link = next(_links_out(target, root), None) if leads_to.is_dir() else None
    if link is not None:
        return Escape(written, _real(link), root, os.path.relpath(link, base_dir))
    return None


def names_local_path(written: str, base_dir: Path) -> bool:
    """Whether a Hugging Face `model` names a local path rather than a hub id: it exists here, or
    it could never be a hub id (absolute, or climbing with `..`)."""
    path = Path(written)
    return path.is_absolute() or ".." in path.parts or os.path.lexists(base_dir / path)


def _inside(path: Path, root: Path) -> bool:
    """Whether a resolved `path` lies in `root`, and not in the `.git` folder of it."""
    return path.is_relative_to(root) and GIT not in path.relative_to(root).parts


def _real(path: Path) -> Path:
    # os.path.realpath, not Path.resolve: a symlink loop resolves to itself instead of raising.
    return Path(os.path.realpath(path))


def _links_out(folder: Path, root: Path) -> Iterator[Path]:
    """Links under `folder` that resolve outside `root`; links that stay inside are followed once each."""
    seen = {_real(folder)}
    for parent, folders, files in os.walk(folder, followlinks=True):
        entries = [Path(parent, name) for name in (*folders, *files)]
        yield from (entry for entry in entries if entry.is_symlink() and not _inside(_real(entry), root))
        folders[:] = [name for name in folders if _first_visit(Path(parent, name), root, seen)]


def _first_visit(folder: Path, root: Path, seen: set[Path]) -> bool:
    """Walk each real folder inside `root` once, so a link back up the tree cannot loop."""
    real = _real(folder)
    if real in seen or not _inside(real, root):
        return False
    seen.add(real)
    return True
