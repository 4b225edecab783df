"""Where conduit's own files and state live."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def templates_dir() -> Path:
    """The templates shipped inside the package (`conduit.templates`, from the top-level templates/)."""
    return Path(str(resources.files("conduit.templates")))


def package_dir() -> Path:
    """The installed `conduit` package: copied into every bento so the service runs the same code."""
    return Path(__file__).resolve().parent


def conduit_home() -> Path:
    """State root: `CONDUIT_HOME`, default `~/.conduit` (store, bentos, logs)."""
    return Path(os.environ.get("CONDUIT_HOME") or Path.home() / ".conduit").expanduser()
