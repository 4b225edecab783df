"""The runtime contract: one thin class per framework, loaded once and called per batch.

A runtime never imports its framework at module import time: `conduit.runtimes` must be importable
in a bento that only has scikit-learn installed. Frameworks are imported inside `load`.

    runtime = SklearnClassifierRuntime.load(stage, Path("model.pkl"), device="cpu")
    output = runtime.predict(batch, parameters={})

`predict` receives the previous stage's output (or the request's data for the first stage) and
returns the model's output with one row/item per data point: a numpy array, or a list of items
(spaCy Docs, Hugging Face dicts). `conduit.runtimes.convert` turns it into plain JSON at the end.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar, Optional

from conduit.errors import ModelLoadError

CPU = "cpu"
CUDA = "cuda"

# model_type -> "module:Class", imported on first use so a sklearn bento never imports torch.
RUNTIMES: dict[str, str] = {
    "sklearn": "conduit.runtimes.sklearn:SklearnRuntime",
    "sklearn_classifier": "conduit.runtimes.sklearn:SklearnClassifierRuntime",
    "sklearn_preprocessor": "conduit.runtimes.sklearn:SklearnPreprocessorRuntime",
    "torch": "conduit.runtimes.torch:TorchRuntime",
    "xgboost_regressor": "conduit.runtimes.xgboost:XGBoostRegressorRuntime",
    "xgboost_classifier": "conduit.runtimes.xgboost:XGBoostClassifierRuntime",
    "onnx": "conduit.runtimes.onnx:OnnxRuntime",
    "spacy": "conduit.runtimes.spacy:SpacyRuntime",
    "huggingface_pipeline": "conduit.runtimes.huggingface:HuggingFaceRuntime",
}


class Runtime:
    """Base of every runtime. Subclasses set `model_type` and implement `load` and `predict`."""

    model_type: ClassVar[str] = ""
    # True for frameworks that can place the model on a GPU (torch, onnxruntime, transformers).
    uses_device: ClassVar[bool] = False

    def __init__(self, model: Any, device: str = CPU) -> None:
        self.model = model
        self.device = device

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> Runtime:
        raise NotImplementedError

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        raise NotImplementedError

    @classmethod
    def cuda_available(cls) -> bool:
        """Whether this framework can reach a CUDA GPU here (only asked when the hardware is a GPU)."""
        return False


def runtime_class(model_type: str) -> type[Runtime]:
    module_name, class_name = RUNTIMES[str(model_type)].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def require_file(path: Optional[Path]) -> Path:
    """The artifact as a readable file, or a ModelLoadError that says what is wrong with it."""
    path = require_path(path)
    if not path.exists():
        raise ModelLoadError(f"artifact not found: {path}")
    if path.is_dir():
        raise ModelLoadError(f"artifact {path} is a folder; this model type expects a file")
    _require_readable(path)
    return path


def require_folder(path: Optional[Path]) -> Path:
    path = require_path(path)
    if not path.exists():
        raise ModelLoadError(f"artifact not found: {path}")
    if not path.is_dir():
        raise ModelLoadError(f"artifact {path} is a file; this model type expects a folder")
    _require_readable(path)
    return path


def require_path(path: Optional[Path]) -> Path:
    """Every model type but huggingface_pipeline names an artifact (validation saw to it)."""
    if path is None:
        raise ModelLoadError("this model type loads an artifact: give the stage a `path`")
    return path


def _require_readable(path: Path) -> None:
    try:
        if path.is_dir():
            next(iter(path.iterdir()), None)
        else:
            with open(path, "rb") as handle:
                handle.read(1)
    except OSError as exc:
        raise ModelLoadError(f"cannot read artifact {path}: {exc.strerror or exc}") from exc


def import_framework(module: str, extra: str) -> Any:
    """Import a model framework, or say which pip extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelLoadError(
            f"the Python module {module!r} is not installed: pip install 'conduit-deploy[{extra}]'"
        ) from exc


def short_reason(exc: BaseException) -> str:
    """The first sentence of a framework's error: enough to recognise, short enough for one line."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")
