"""Running uv: make a virtual environment, install a requirement set into it, and turn uv's
refusal into one line that names the package.

uv is a dependency of conduit (the `uv` wheel ships its binary); a `uv` on PATH serves otherwise.
Installs hardlink from uv's cache (`UV_CACHE_DIR`, default ~/.cache/uv), so a second environment
with the same packages costs links, not copies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from conduit.errors import DeployError

INSTALL_TIMEOUT_S = 1800  # a cold cache downloading torch takes minutes
VENV_TIMEOUT_S = 120
PACKAGE_NOT_FOUND = re.compile(r"Because (\S+?)(?:[=<>!~].*)? was not found in the package registry")
# A pin (the artifact's library version, or the one installed where the Bento was rendered) that
# the chosen python_version is too old for: uv words it as below.
PYTHON_TOO_OLD = re.compile(
    r"current Python version \((\d+\.\d+)[.\d]*\) does not satisfy Python>=(\d+\.\d+)[.\d]* and (\S+?)==(\S+) depends on"
)


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
    if found is None:
        raise DeployError("uv is not installed here: pip install uv (conduit makes each deployment's environment with it)")
    return found


def make_venv(uv: str, python: Path, folder: Path) -> None:
    """A relocatable virtual environment at `folder` (made in a staging folder, then renamed)."""
    _run([uv, "venv", "--quiet", "--relocatable", "--python", str(python), str(folder)], VENV_TIMEOUT_S, folder)


def install(uv: str, folder: Path, requirements: Path, options: list[str], fresh: bool) -> None:
    """Install `requirements` into the environment at `folder`; `fresh`: without uv's cache."""
    command = [uv, "pip", "install", "--quiet", "--python", str(folder / "bin" / "python"), "-r", str(requirements)]
    command += ["--no-cache"] if fresh else []
    _run(command + options, INSTALL_TIMEOUT_S, folder)


def _run(command: list[str], timeout: float, folder: Path) -> None:
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(folder)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, check=False)
    except subprocess.TimeoutExpired:
        raise DeployError(f"making the environment took more than {timeout:.0f} s (uv {command[1]}); try again") from None
    if done.returncode != 0:
        raise DeployError(failure_line(done.stderr))


def failure_line(stderr: str) -> str:
    """uv's refusal in one line: the package it could not find or resolve, and what to do."""
    missing = PACKAGE_NOT_FOUND.search(stderr)
    if missing:
        return (
            f"the environment could not be made: package '{missing.group(1)}' was not found in the package registry "
            "(hint: fix its name or version in requirements_file)"
        )
    too_old = PYTHON_TOO_OLD.search(" ".join(stderr.split()))
    if too_old:
        python, needed, name, version = too_old.groups()
        return (
            f"the environment could not be made: {name}=={version} (the version the model was saved with, or the one "
            f"installed where the Bento was rendered) needs Python>={needed}, and python_version is {python} "
            f"(hint: set python_version to {needed} or later, or save the model again under Python {python})"
        )
    return f"the environment could not be made: {_cause(stderr)} (hint: change the requirement it names)"


def _cause(stderr: str) -> str:
    """uv's `cause:` paragraph (the resolver's explanation, which names the packages) as one line,
    else its last line."""
    lines = stderr.splitlines()
    start = next((index for index, line in enumerate(lines) if line.strip().startswith("cause:")), None)
    if start is None:
        said = [line.strip() for line in lines if line.strip()]
        return said[-1] if said else "uv failed without saying why"
    paragraph = [lines[start].strip()[len("cause:") :]]
    paragraph += [line for line in lines[start + 1 :] if line.startswith("   ") and not line.strip().startswith("hint:")]
    return " ".join(" ".join(paragraph).split())
