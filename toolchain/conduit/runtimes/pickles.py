"""Loading `.pkl` artifacts (pickle or cloudpickle) with failures a person can act on.

Three things go wrong with pickles in practice, and each gets its own message:
- the pickle references a module that is not installed here (name it, and the pip extra);
- it was written by another scikit-learn or XGBoost version (warn with both versions: it may load
  and still predict wrongly);
- it is not a pickle at all (truncated, a different format).
"""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Optional

from conduit.errors import ModelLoadError
from conduit.runtimes.base import require_file

# Top-level module a pickle may need -> the conduit extra that installs it.
EXTRA_FOR_MODULE = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "torch": "torch",
    "onnxruntime": "onnx",
    "spacy": "spacy",
    "transformers": "huggingface",
}

# XGBoost embeds its version in the UBJSON model inside a pickle: `version [#L 3 i1 i7 i0`.
_XGB_UBJ_VERSION = re.compile(rb"version\[#L\x00{7}\x03[iU](.)[iU](.)[iU](.)", re.DOTALL)
_XGB_JSON_VERSION = re.compile(rb'"version":\s*\[\s*(\d+),\s*(\d+),\s*(\d+)\s*\]')


class VersionMismatchWarning(UserWarning):
    """The artifact was written by a different version of its framework than the one installed."""


def missing_module_hint(module: str) -> str:
    top = module.split(".")[0]
    if top in EXTRA_FOR_MODULE:
        return f"pip install 'conduit-deploy[{EXTRA_FOR_MODULE[top]}]'"
    return f"add the package that provides {top!r} to requirements_file (or pip install it)"


def load_pickle(path: Optional[Path]) -> Any:
    """Unpickle `path`, turning every failure into a ModelLoadError and version skew into a warning."""
    path = require_file(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = _unpickle(path)
    for warning in caught:
        _rewarn(warning, path)
    return obj


def _unpickle(path: Path) -> Any:
    import cloudpickle  # pickle.load reads cloudpickle files too; importing registers its reducers

    try:
        try:
            with open(path, "rb") as handle:
                return cloudpickle.load(handle)
        except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, TypeError, IndexError) as exc:
            joblib_file = _joblib_load(path)
            if joblib_file is _NOT_JOBLIB:
                raise ModelLoadError(f"{path.name} is not a readable pickle ({type(exc).__name__}: {exc})") from exc
            return joblib_file
    except ModuleNotFoundError as exc:  # from either loader: name the module and what installs it
        module = exc.name or str(exc)
        raise ModelLoadError(
            f"{path.name} needs the Python module {module!r}, which is not installed: {missing_module_hint(module)}"
        ) from exc


_NOT_JOBLIB = object()


def _joblib_load(path: Path) -> Any:
    """A file `joblib.dump` wrote (scikit-learn's own advice for saving models): its arrays follow
    their wrappers raw, or the whole file is compressed, so only joblib reads it back."""
    try:
        import joblib  # scikit-learn depends on it: present wherever a scikit-learn model serves
    except ImportError:
        return _NOT_JOBLIB
    try:
        return joblib.load(path)
    except ModuleNotFoundError:
        raise  # a joblib file after all: its missing module is the message
    except Exception:  # noqa: BLE001 not a joblib file either: the pickle error above says what it is
        return _NOT_JOBLIB


def _rewarn(warning: warnings.WarningMessage, path: Path) -> None:
    message = _version_message(warning.message, path)
    if message is None:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    else:
        warnings.warn(message, VersionMismatchWarning, stacklevel=4)


def _version_message(warning: Any, path: Path) -> Optional[str]:
    # Any: scikit-learn's warning is known by its class name, so that sklearn need not be imported.
    if type(warning).__name__ == "InconsistentVersionWarning":  # scikit-learn >= 1.3
        return _skew(path, "scikit-learn", warning.original_sklearn_version, warning.current_sklearn_version)
    if "older version of XGBoost" in str(warning):
        import xgboost

        return _skew(path, "XGBoost", saved_xgboost_version(path.read_bytes()), xgboost.__version__)
    return None


def _skew(path: Path, framework: str, saved: Optional[str], installed: str) -> str:
    written_by = f"{framework} {saved}" if saved else f"an older {framework}"
    pin = f"Pin {framework} {saved}" if saved else f"Pin the {framework} version that wrote it"
    return (
        f"{path.name} was written by {written_by} but {framework} {installed} is installed: "
        f"predictions may be wrong. {pin} in requirements_file, or retrain and save again."
    )


def saved_xgboost_version(raw: bytes) -> Optional[str]:
    match = _XGB_UBJ_VERSION.search(raw)
    if match:
        return ".".join(str(part[0]) for part in match.groups())
    match = _XGB_JSON_VERSION.search(raw)
    return ".".join(part.decode() for part in match.groups()) if match else None
