"""Where an environment's torch comes from, so that a CPU deployment never pulls PyPI's
multi-GB CUDA build.

PyPI's `torch` for Linux is the CUDA build; the CPU build (`2.13.0+cpu`) lives on PyTorch's own
index and in wheel folders pip is pointed at (`PIP_FIND_LINKS`; uv reads only `UV_FIND_LINKS`, so
those folders are passed to uv as `--find-links`, where uv prefers the `+cpu` local version).
In that order of cost: a local CPU wheel for the interpreter (no download: uv installs it once into
its cache, then hardlinks it), else PyTorch's CPU index when it answers (`--torch-backend cpu`),
else a clear error. A GPU deployment on a machine with a GPU takes PyPI's default build.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

from conduit.environments.requirements import names_package, pinned_version
from conduit.targets.honoured import cuda_visible

PYTORCH_INDEX = ("download.pytorch.org", 443)
PROBE_TIMEOUT_S = 2.0


def wheel_folders() -> list[str]:
    """The local wheel folders pip and uv are configured with (space- or colon-separated lists)."""
    text = " ".join(os.environ.get(name, "") for name in ("PIP_FIND_LINKS", "UV_FIND_LINKS"))
    folders = [part for chunk in text.split() for part in chunk.split(os.pathsep) if part]
    return [folder for folder in dict.fromkeys(folders) if Path(folder).is_dir()]


def wants_cpu_torch(lines: list[str], hardware: Optional[str]) -> bool:
    """torch is required and the CPU build serves: CPU hardware, or no GPU visible here."""
    return names_package(lines, "torch") and (hardware in (None, "CPU") or not cuda_visible())


def cpu_torch_options(lines: list[str], python_tag: str) -> Optional[list[str]]:
    """uv options that install the CPU torch `lines` pin for `python_tag` (cp312), or None when no
    source of it is reachable."""
    if local_cpu_wheel(pinned_version(lines, "torch"), python_tag) is not None:
        return []  # the wheel folders go to uv anyway (`wheel_folders`)
    return ["--torch-backend", "cpu"] if pytorch_index_answers() else None


def local_cpu_wheel(version: Optional[str], python_tag: str) -> Optional[Path]:
    pattern = f"torch-{version or '*'}+cpu-{python_tag}-*.whl"
    return next((wheel for folder in wheel_folders() for wheel in sorted(Path(folder).glob(pattern))), None)


def pytorch_index_answers() -> bool:
    try:
        with socket.create_connection(PYTORCH_INDEX, timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False
