"""Where conduit's own files and state live, and keeping that state private.

`$CONDUIT_HOME` holds the key's hash (conduit.db), logs, metrics, prediction logs and the
BentoML store: everything in it is its owner's alone, folders 0700 and files 0600. Conduit's own
processes get there with a umask of 0o077 (`keep_private`: the CLI's state commands, the
supervisor and the router; children such as the serving workers inherit it), the Python API's
deploy sets it only while it runs (`private_files`), and opening the store tightens a home made
before (`make_private`).
"""
from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

PRIVATE_UMASK = 0o077  # no access for group or others: folders come out 0700, files 0600


def templates_dir() -> Path:
    """The templates shipped inside the package (`conduit.templates`, from the top-level templates/)."""
    return Path(str(resources.files("conduit.templates")))


def package_dir() -> Path:
    """The installed `conduit` package: copied into every bento so the service runs the same code."""
    return Path(__file__).resolve().parent


def conduit_home() -> Path:
    """State root: `CONDUIT_HOME`, default `~/.conduit` (store, bentos, logs)."""
    return Path(os.environ.get("CONDUIT_HOME") or Path.home() / ".conduit").expanduser()


def keep_private() -> None:
    """Everything this process (and any process it starts) creates from now on is private."""
    os.umask(PRIVATE_UMASK)


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """`keep_private` for a while, in a library caller's process: its own umask comes back after."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def current_umask() -> int:
    mask = os.umask(PRIVATE_UMASK)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def make_private(home: Path) -> None:
    """Create `home` private, or tighten one made before: a home open to group or others gets that
    access removed from it and from everything in it it owns, once (a private home is left as is)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(home.stat().st_mode) & PRIVATE_UMASK:
        tighten(home)


def tighten(folder: Path) -> None:
    """Remove group and other access from `folder` and everything under it that this user owns
    (for what a umask cannot govern: a tool that chmods its files, a home made before)."""
    for parent, folders, files in os.walk(folder):
        for entry in (Path(parent, name) for name in (*folders, *files)):
            _tighten(entry)
    _tighten(folder)


def _tighten(path: Path) -> None:
    status = path.lstat()
    if not stat.S_ISLNK(status.st_mode) and status.st_uid == os.getuid():  # a link's own mode means nothing
        path.chmod(stat.S_IMODE(status.st_mode) & ~PRIVATE_UMASK)
