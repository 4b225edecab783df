"""One Python environment per set of requirements, made with uv, for the local target.

`ensure(bento_dir, python_version)` answers the environment that serves a built Bento: its
requirements (`env/python/requirements.txt`: the framework pins, the artifact's own training
library versions, conduit's runtime packages, the user's requirements_file and BentoML's pin) on
the interpreter `python_version` names. Environments live in `$CONDUIT_HOME/envs/<key>/` (or `$CONDUIT_ENVS/<key>/`), keyed
by content (`conduit.environments.requirements.content_key`), so Bentos with the same pins share
one and a re-apply finds it without running anything (a stat and a read). conduit's own
environment is never touched.

Making one is safe against a second apply making the same one at once and against an interrupted
make: under an exclusive lock on `envs/.<key>.lock`, the environment is made in a staging folder
next to its place (`uv venv --relocatable`, then `uv pip install`), its record `conduit-env.json`
written last, and the folder renamed into place; a folder without a record is never used.
`force` (force_rebuild) makes it again without uv's cache and swaps it in the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

from conduit.environments import torch_builds
from conduit.environments.interpreters import find_python, own_version
from conduit.environments.requirements import bento_hardware, content_key, requirement_lines, with_pin
from conduit.environments.uv import install, make_venv, uv_binary
from conduit.errors import DeployError
from conduit.paths import conduit_home

RECORD = "conduit-env.json"  # written last: an environment folder without it is not finished


@dataclass(frozen=True)
class Environment:
    python: Path  # the interpreter replicas run with (bin/python of the environment)
    key: str  # content key (hash of python version + the requirements it was made from)
    path: Path  # the environment's folder
    created: bool  # made (or remade) by this call, rather than found


@dataclass(frozen=True)
class Plan:
    """What an environment is made from: everything its key hashes."""

    python_version: str
    lines: list[str]
    cpu_torch: bool

    @property
    def key(self) -> str:
        return content_key(self.python_version, self.lines, "torch-cpu" if self.cpu_torch else "")


def ensure(bento_dir: Path, python_version: Optional[str], force: bool = False,
           progress: Callable[[str], None] = print) -> Environment:  # fmt: skip
    """The environment that serves the built Bento at `bento_dir` (its requirements.txt is the set
    to install), made with uv under $CONDUIT_HOME/envs/<key>/ when missing (`force`: remade
    without cache). DeployError with a one-line message when it cannot be made."""
    plan = plan_for(Path(bento_dir), python_version or own_version())
    folder = envs_home() / plan.key
    if not force and is_finished(folder):
        return Environment(interpreter(folder), plan.key, folder, created=False)
    with locked(folder):
        if not force and is_finished(folder):  # another apply made it while this one waited
            return Environment(interpreter(folder), plan.key, folder, created=False)
        make(plan, folder, force, progress)
    return Environment(interpreter(folder), plan.key, folder, created=True)


def plan_for(bento_dir: Path, python_version: str) -> Plan:
    # BentoML's version from its metadata: importing it would cost a re-apply about a second.
    lines = with_pin(requirement_lines(bento_dir), "bentoml", metadata.version("bentoml"))
    return Plan(python_version, lines, torch_builds.wants_cpu_torch(lines, bento_hardware(bento_dir)))


def envs_home() -> Path:
    """`$CONDUIT_ENVS`, else `$CONDUIT_HOME/envs`: a test suite with a home per test shares one
    folder of environments across them (they hold public packages, no state and no secret)."""
    return Path(os.environ["CONDUIT_ENVS"]) if os.environ.get("CONDUIT_ENVS") else conduit_home() / "envs"


def interpreter(folder: Path) -> Path:
    return folder / "bin" / "python"


def is_finished(folder: Path) -> bool:
    return (folder / RECORD).is_file()


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive lock for making the environment at `folder` (released if the process dies)."""
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = os.open(folder.parent / f".{folder.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def make(plan: Plan, folder: Path, fresh: bool, progress: Callable[[str], None]) -> None:
    uv, start = uv_binary(), time.perf_counter()
    python = find_python(plan.python_version, uv)
    progress(f"🐍 Making the Python {plan.python_version} environment {plan.key} with uv...")
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        make_venv(uv, python, staging)
        requirements = staging / "conduit-requirements.txt"
        requirements.write_text("\n".join(plan.lines) + "\n", encoding="utf-8")
        install(uv, staging, requirements, install_options(plan, staging), fresh)
        record(staging, plan, python)
        make_private(staging)
        swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(f"✅ Environment {plan.key} ready ({time.perf_counter() - start:.1f} s).")


def install_options(plan: Plan, staging: Path) -> list[str]:
    options = [option for folder in torch_builds.wheel_folders() for option in ("--find-links", folder)]
    if not plan.cpu_torch:
        return options
    torch_options = torch_builds.cpu_torch_options(plan.lines, python_tag(staging))
    if torch_options is None:
        raise DeployError(
            f"no CPU build of torch for Python {plan.python_version} is reachable (PyTorch's index does not "
            "answer and no torch-*+cpu wheel is in PIP_FIND_LINKS/UV_FIND_LINKS), and PyPI's torch is the "
            "multi-GB CUDA build: put the CPU wheel in a folder and set UV_FIND_LINKS to it, then apply again"
        )
    return options + torch_options


def python_tag(staging: Path) -> str:
    """`cp312` for the environment being made, read from its pyvenv.cfg (no interpreter start)."""
    config = (staging / "pyvenv.cfg").read_text(encoding="utf-8")
    version = next(line.split("=", 1)[1].strip() for line in config.splitlines() if line.startswith(("version_info", "version")))
    return "cp" + "".join(version.split(".")[:2])


def record(staging: Path, plan: Plan, python: Path) -> None:
    document = {"key": plan.key, "python_version": plan.python_version, "interpreter": str(python),
                "requirements": plan.lines, "cpu_torch": plan.cpu_torch, "made_at": time.time()}  # fmt: skip
    (staging / RECORD).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def make_private(root: Path) -> None:
    """Everything under $CONDUIT_HOME is its owner's alone (`conduit.paths`), an environment too.
    uv hardlinks files from its cache with the cache's modes (0644 where the cache was filled under
    the usual umask), so they are tightened here; a hardlink shares its inode, so the cache's copy
    becomes owner-only too, which uv, run by the same owner, reads all the same."""
    for folder, folders, files in os.walk(root):
        for path in [Path(folder), *(Path(folder) / name for name in [*folders, *files])]:
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
                path.chmod(stat.S_IMODE(mode) & 0o700)


def swap_in(staging: Path, folder: Path) -> None:
    """Rename `staging` to `folder`; an older one there (force, or left unfinished) is moved aside first."""
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
        folder.rename(old / "env")
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(folder)


__all__ = ["Environment", "ensure"]
