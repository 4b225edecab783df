"""The set of requirements an environment is made from, and the content key that names it.

A built Bento lists what it needs in `env/python/requirements.txt` (BentoML appends its own
`bentoml==` pin to the build context's `requirements.txt`); a build context has only the latter.
The key hashes the Python version and the requirements as a set: comments, blank lines, order,
repeats and the spelling of a distribution's name (`Scikit_Learn`) do not change it, so every
Bento whose pins are the same shares one environment.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Optional

from conduit.artifacts.pins import canonical_name

KEY_LENGTH = 16  # hex characters: the folder name under $CONDUIT_HOME/envs
KEY_FORMAT = 1  # bump when what goes into the key changes, so old environments are not reused wrongly
# Where a requirements file sits: in a built Bento, then in a build context.
REQUIREMENTS_PLACES = ("env/python/requirements.txt", "src/requirements.txt", "requirements.txt")
LOCK_PLACES = ("src/conduit.lock.json", "conduit.lock.json")
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$")


def requirement_lines(bento_dir: Path) -> list[str]:
    """The Bento's requirements, normalised and sorted (see `normalised`)."""
    path = _first(bento_dir, REQUIREMENTS_PLACES)
    text = path.read_text(encoding="utf-8") if path else ""
    return sorted({line for line in map(normalised, text.splitlines()) if line})


def normalised(line: str) -> str:
    """One requirement as the key sees it: no comment, no spaces, the name as PEP 503 folds it."""
    line = re.sub(r"(^|\s)#.*$", "", line).strip()
    match = NAME.match(line)
    if not match or "://" in line:
        return line  # an option (`--find-links ...`) or a URL: kept as written
    name, rest = match.groups()
    return canonical_name(name) + re.sub(r"\s+", "", rest)


def pinned_version(lines: list[str], name: str) -> Optional[str]:
    """The version `name==X` pins in `lines` (normalised), or None."""
    prefix = f"{canonical_name(name)}=="
    return next((line[len(prefix) :].split(";")[0] for line in lines if line.startswith(prefix)), None)


def name_of(line: str) -> Optional[str]:
    """The distribution a (normalised) requirement line names; None for an option or a URL."""
    match = NAME.match(line)
    return canonical_name(match.group(1)) if match and "://" not in line else None


def names_package(lines: list[str], name: str) -> bool:
    return canonical_name(name) in {name_of(line) for line in lines}


def with_pin(lines: list[str], name: str, version: str) -> list[str]:
    """`lines` with `name==version` added unless `name` is already required."""
    return lines if names_package(lines, name) else sorted([*lines, f"{canonical_name(name)}=={version}"])


def content_key(python: str, lines: list[str], flavour: str = "") -> str:
    """Hash of the Python version, the requirement set and the build `flavour` (torch's CPU build)."""
    document = json.dumps({"format": KEY_FORMAT, "python": python, "requirements": lines, "flavour": flavour})
    return hashlib.sha256(document.encode()).hexdigest()[:KEY_LENGTH]


def bento_hardware(bento_dir: Path) -> Optional[str]:
    """The hardware the Bento was rendered for (its lock file says), or None."""
    path = _first(bento_dir, LOCK_PLACES)
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("hardware") if path else None
    except (OSError, ValueError):
        return None


def _first(folder: Path, places: tuple[str, ...]) -> Optional[Path]:
    return next((folder / place for place in places if (folder / place).is_file()), None)
