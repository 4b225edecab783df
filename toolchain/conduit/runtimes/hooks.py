"""Pre and post hooks: plain Python functions named `file.py:function` in the manifest.

The file is resolved against the manifest's folder and imported under a private module name, so
two flows with a `hooks.py` each never share one module.

Signatures (the same for every stage):

    def pre(data): ...                       # data: the request's data, or the previous stage's output
    def pre(data, files=None): ...           # also receives uploaded files, {field name: bytes}
    def post(output): ...                    # output: the model's raw output (numpy array, list, ...)
    def post(output, parameters=None): ...   # also receives the request's `parameters`

A hook receives `files` and/or `parameters` only when it declares a parameter of that name (or
`**kwargs`), so the one-argument form always works. `files` is always a dict ({} when the request
had none). A hook may raise `conduit.errors.InputError` to reject a request with HTTP 422; any
other exception is reported as a HookError naming the hook.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from conduit.errors import ConduitError, ModelLoadError

OPTIONAL_KEYWORDS = ("files", "parameters")


class HookError(ConduitError):
    """A pre or post hook raised an unexpected exception: a bug in the hook, not in the request."""

    http_status = 500
    type = "hook_error"


class Hook:
    """A loaded hook, called with only the keywords it declares."""

    def __init__(self, spec: str, function: Callable[..., Any]) -> None:
        self.spec = spec
        self.function = function
        self.keywords = _accepted_keywords(function)

    def __call__(self, value: Any, **available: Any) -> Any:
        kwargs = {name: available[name] for name in self.keywords if name in available}
        try:
            return self.function(value, **kwargs)
        except ConduitError:
            raise
        except Exception as exc:
            raise HookError(f"hook {self.spec} raised {type(exc).__name__}: {exc}") from exc


def load_hook(spec: str, base_dir: Path) -> Hook:
    """Import `file.py:function` relative to `base_dir` (afresh each time: an edited file is re-read)."""
    file_part, _, function_name = spec.rpartition(":")
    path = (Path(base_dir) / file_part).resolve()
    module = _import_file(path, spec)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelLoadError(f"hook {spec}: {path.name} defines no function {function_name!r}")
    return Hook(spec, function)


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"hook {spec}: file not found: {path}")
    name = "conduit_hooks_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before exec: dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"hook {spec}: importing {path.name} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _accepted_keywords(function: Callable[..., Any]) -> tuple[str, ...]:
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return OPTIONAL_KEYWORDS
    names = {p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return tuple(name for name in OPTIONAL_KEYWORDS if name in names)
