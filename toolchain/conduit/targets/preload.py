"""What a Bento's workers will import and be told, worked out from the Bento alone, so that the
supervisor's fork server can import it before they start (see `conduit.targets.forkserver`).

Read from the Bento's lock file (`conduit.serving.bento`) without importing any framework: each model type names
its framework's modules, and a plain pickle names the classes it holds (read with `pickletools`,
never unpickled). A module left out here is simply imported by the worker itself.
"""
from __future__ import annotations

import pickletools
from pathlib import Path
from typing import Any, Iterator

from conduit.hardware import math_thread_env
from conduit.model_types import MODEL_TYPES
from conduit.serving.bento import read_lock

PICKLE_PROTOCOL_2_PLUS = b"\x80"  # what pickle, joblib and cloudpickle files begin with
SCAN_LIMIT_BYTES = 4 << 20  # the classes come first; the arrays behind them are not worth reading
STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING", "STRING"}
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
    """The modules whose classes or functions the pickle at `path` references (none if it is not
    a pickle). Reads the opcodes only; stops at the first thing that is not one (joblib writes
    its arrays raw, between opcodes)."""
    try:
        with open(path, "rb") as file:
            data = file.read(SCAN_LIMIT_BYTES)
    except OSError:
        return []
    if not data.startswith(PICKLE_PROTOCOL_2_PLUS):
        return []
    return [module for module in dict.fromkeys(_referenced_modules(data)) if _worth_importing(module)]


def _referenced_modules(data: bytes) -> Iterator[str]:
    recent: list[Any] = []  # the last two values pushed: STACK_GLOBAL takes module and name from them
    memo: dict[int, Any] = {}
    try:
        for opcode, argument, _position in pickletools.genops(data):
            if opcode.name == "GLOBAL":  # protocols 0-3: "module name" in the opcode itself
                yield str(argument).split(" ", 1)[0]
            elif opcode.name == "STACK_GLOBAL" and len(recent) == 2 and isinstance(recent[0], str):
                yield recent[0]
            if opcode.name in STRING_OPS:
                recent = [*recent[-1:], argument]
            elif opcode.name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(argument)] = recent[-1] if recent else None
            elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
                recent = [*recent[-1:], memo.get(int(argument))]
            elif opcode.name not in ("FRAME", "PROTO"):
                recent = [*recent[-1:], None]
    except (ValueError, KeyError, IndexError):  # past the opcodes: raw array bytes, or truncated
        return


def _worth_importing(module: str) -> bool:
    return all(part.isidentifier() for part in module.split(".")) and module.split(".")[0] not in SKIPPED
