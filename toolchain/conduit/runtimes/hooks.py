"""Pre and post hooks: plain Python functions named `file.py:function` in the manifest.

The file is resolved against the manifest's folder and imported under a private module name, so
two flows with a `hooks.py` each never share one module. `Conduit.run()` calls the functions it was
given instead (`Hook(spec, function)`): it never imports the user's script again.

Signatures (the same for every stage):

    def pre(data): ...                       # data: the request's data, or the previous stage's output
    def pre(data, files=None): ...           # also receives uploaded files
    def post(output): ...                    # output: the model's raw output (numpy array, list, ...)
    def post(output, parameters=None): ...   # also receives the request's `parameters`

A hook receives `files` and/or `parameters` only when it declares a parameter of that name (or
`**kwargs`), so the one-argument form always works. `parameters` is always a dict, `files` too
({} when the request had none).

Files: `files` maps each multipart field name to an UploadedFile (conduit.runtimes.uploads): the
file's bytes, with `.filename` and `.content_type`. A request may carry files and no `data`; the
first stage's `pre` hook then receives `data=None`. The first stage's `pre` hook decides how many
data points a request holds: each row of what it returns is one data point, with one prediction id
and one result (one CSV upload may become three rows). Without one, the points are the request's
`data`.

A hook may raise `conduit.errors.InputError` to reject a request with HTTP 422; any other exception
is reported as a HookError (HTTP 500) naming the hook, and logged with its traceback.

Re-entry guard: importing a hook file must not run a deployment. A script without an
`if __name__ == "__main__":` guard that defines its hooks and then builds `Conduit(...)` would do
just that (and, imported again by its own run, recurse forever). While this module imports a
hook file, `Conduit(...)`, `run()` and `deploy()` call `refuse_reentry()`, which stops the import
with one message saying what to do.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from conduit.errors import ConduitError, ModelLoadError
from conduit.paths import package_dir

OPTIONAL_KEYWORDS = ("files", "parameters")
IMPORT_CHECK_TIMEOUT_S = 60

HookFunctions = Mapping[tuple[int, str], Callable[..., Any]]  # (stage index, "pre"/"post") -> function

# Run by import_in_subprocess: the same loader the Bento uses; a ConduitError's message on stderr.
_IMPORT_CHECK = """
import sys
from conduit.errors import ConduitError
from conduit.runtimes.hooks import load_hook
try:
    load_hook(sys.argv[1], sys.argv[2])
except ConduitError as exc:
    sys.stderr.write(str(exc))
    sys.exit(3)
"""


class HookError(ConduitError):
    """A pre or post hook raised an unexpected exception: a bug in the hook, not in the request."""

    http_status = 500
    type = "hook_error"


class HookReentry(ModelLoadError):
    """Importing a hook file built a Conduit or ran/deployed one: the file is a script, not a module."""


# Hook files being imported right now (innermost last), and whether one of them tripped the guard.
_importing: list[Path] = []
_tripped: list[str] = []


def refuse_reentry(action: str) -> None:
    """Raise HookReentry when `action` (e.g. `Conduit(...)`) runs inside the import of a hook file."""
    if _importing:
        _tripped.append(reentry_message(_importing[-1], action))
        raise HookReentry(_tripped[-1])


def reentry_message(path: Path, action: str) -> str:
    return (
        f"importing hook file {path.name} ran {action}: it is a script that deploys itself, so loading "
        "its hooks would run it again. Move the hook functions into their own module (e.g. hooks.py) and "
        'import them from there, or put the script\'s top-level code under `if __name__ == "__main__":`'
    )


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


def import_in_subprocess(spec: str, base_dir: Path, timeout_s: float = IMPORT_CHECK_TIMEOUT_S) -> Optional[str]:
    """Import a hook as the Bento will, in a fresh interpreter (cwd = `base_dir`), without running
    anything in this one: None when it loads, else why not (one line)."""
    package_root = str(package_dir().parent)  # the folder holding `conduit`
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", _IMPORT_CHECK, spec, str(base_dir)]
    try:
        done = subprocess.run(command, cwd=base_dir, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"hook {spec}: importing its file took over {timeout_s:g} s (does it run work at its top level?)"
    if done.returncode == 0:
        return None
    lines = (done.stderr or "").strip().splitlines()
    return lines[-1] if lines else f"hook {spec}: importing its file exited with status {done.returncode}"


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"hook {spec}: file not found: {path}")
    name = "conduit_hooks_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelLoadError(f"hook {spec}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before exec: dataclasses and pickling look the module up by name
    try:
        _exec_guarded(module_spec, module, path)
    except HookReentry as exc:
        sys.modules.pop(name, None)
        raise HookReentry(f"hook {spec}: {exc}") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"hook {spec}: importing {path.name} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _exec_guarded(module_spec: Any, module: Any, path: Path) -> None:
    """Execute the file with the re-entry guard up; a trip the script caught and ignored still counts."""
    _importing.append(path)
    del _tripped[:]
    try:
        module_spec.loader.exec_module(module)
    finally:
        _importing.pop()
    if _tripped:
        raise HookReentry(_tripped[0])


def _accepted_keywords(function: Callable[..., Any]) -> tuple[str, ...]:
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return OPTIONAL_KEYWORDS
    names = {p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return tuple(name for name in OPTIONAL_KEYWORDS if name in names)
