"""Which interpreter an environment is made with: `python_version` ("3.12") found as uv finds
interpreters (managed installs, PATH), then in pyenv's versions folder (pyenv's shims answer only
for its global versions), then as `pythonX.Y` on PATH. Nothing is downloaded here: where none is
installed, the error says how to get one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from conduit.errors import DeployError

PROBE_TIMEOUT_S = 15
VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"


def own_version() -> str:
    """conduit's own Python as `X.Y`: what an environment gets when the caller names none."""
    return "{}.{}".format(*sys.version_info[:2])


def find_python(version: str, uv: str) -> Path:
    """An installed interpreter of Python `version` (X.Y); DeployError saying how to get one."""
    if version == own_version():
        return Path(sys.executable)
    for candidate in _candidates(version, uv):
        if _runs_as(candidate, version):
            return candidate
    raise DeployError(
        f"Python {version} is not installed here (looked with `uv python find`, in pyenv and on PATH): "
        f"install it with `uv python install {version}` (or `pyenv install {version}`), "
        f"or set python_version to {own_version()}, then apply again"
    )


def _candidates(version: str, uv: str) -> Iterator[Path]:
    found = _uv_find(version, uv)
    if found is not None:
        yield found
    yield from _pyenv_interpreters(version)
    on_path = shutil.which(f"python{version}", path=_path_without_shims())
    if on_path:
        yield Path(on_path)


def _uv_find(version: str, uv: str) -> Optional[Path]:
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    try:
        done = subprocess.run([uv, "python", "find", version], capture_output=True, text=True, check=False,
                              timeout=PROBE_TIMEOUT_S, env=environment)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = done.stdout.strip()
    return Path(path) if done.returncode == 0 and path else None


def _pyenv_interpreters(version: str) -> Iterator[Path]:
    """`$(pyenv root)/versions/X.Y.*/bin/pythonX.Y`, newest patch release first."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    yield from sorted(root.glob(f"versions/{version}.*/bin/python{version}"), key=_release, reverse=True)


def _release(interpreter: Path) -> tuple[int, ...]:
    """(3, 12, 1) from `.../versions/3.12.1/bin/python3.12`; a part that is not a number sorts first."""
    return tuple(int(part) if part.isdigit() else -1 for part in interpreter.parents[1].name.split("."))


def _path_without_shims() -> str:
    """PATH without pyenv's shims, which answer `command not found` for versions that are not global."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(folder for folder in folders if not folder.rstrip("/").endswith("shims"))


def _runs_as(interpreter: Path, version: str) -> bool:
    try:
        done = subprocess.run([str(interpreter), "-c", VERSION_PROBE], capture_output=True, text=True, check=False,
                              timeout=PROBE_TIMEOUT_S)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == version
