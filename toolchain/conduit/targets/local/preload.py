"""What a Bento's workers will import and be told, worked out from the Bento alone, so that the
zygote can import it before a replica is forked from it (see `conduit.targets.local.zygote`).

Read from the Bento's lock file (`conduit.serving.bento`) without importing any framework: each model type names
its framework's modules, and a plain pickle names the classes it holds (read by
`conduit.artifacts`, never unpickled). A module left out here is simply imported by the worker itself.
"""
from __future__ import annotations

from pathlib import Path

from conduit.artifacts import PICKLE_SUFFIXES, read_data, referenced_modules
from conduit.hardware import math_thread_env
from conduit.model_types import MODEL_TYPES
from conduit.serving.bento import read_lock

SCAN_LIMIT_BYTES = 4 << 20  # the classes come first; the arrays behind them are not worth reading
SKIPPED = ("__main__", "__builtin__", "builtins", "copy_reg", "copyreg", "_codecs", "conduit")


def worker_preparation(src: Path) -> tuple[list[str], dict[str, str]]:
    """(the modules loading the Bento's flow imports, in order; the math-thread environment its
    generated service.py gives each worker). Nothing for a folder that is not a conduit Bento."""
    try:
        lock = read_lock(src)
    except (OSError, ValueError):
        return [], {}
    manifest = lock["manifest"]
    modules: list[str] = []
    for stage in manifest["flow"]:
        modules += MODEL_TYPES[stage["model_type"]].imports
        if stage.get("path"):
            modules += pickled_modules(src / stage["path"])
    return list(dict.fromkeys(modules)), math_thread_env(lock["hardware"], manifest["cpu"])


def pickled_modules(path: Path) -> list[str]:
    """The modules whose classes or functions the pickle at `path` references, worth importing
    ahead (none if it is not a pickle). Read by `conduit.artifacts`, never unpickled."""
    if Path(path).suffix.lower() not in PICKLE_SUFFIXES:
        return []  # XGBoost's JSON or ONNX's protobuf could read as stray opcodes
    try:
        data, _whole = read_data(path, SCAN_LIMIT_BYTES)
    except OSError:
        return []
    return [module for module in dict.fromkeys(referenced_modules(data)) if _worth_importing(module)]


def _worth_importing(module: str) -> bool:
    return all(part.isidentifier() for part in module.split(".")) and module.split(".")[0] not in SKIPPED
