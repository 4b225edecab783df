"""Hugging Face: `transformers.pipeline(task, model=..., **options)`, called with the request's parameters.

`model` is a local folder (resolved by the flow against the manifest's folder) or a hub id already
in the local cache: nothing is downloaded at run time (HF_HUB_OFFLINE defaults to 1 here).
Each data point is one pipeline input (a string for text tasks, an object such as
{"question", "context"} for others); the pipeline returns one result per input.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Optional

from conduit.errors import ModelLoadError
from conduit.runtimes import convert
from conduit.runtimes.base import CPU, CUDA, Runtime, import_framework, short_reason


class HuggingFaceRuntime(Runtime):
    model_type: ClassVar[str] = "huggingface_pipeline"
    uses_device: ClassVar[bool] = True

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> HuggingFaceRuntime:
        # Before transformers is imported: huggingface_hub reads these once, at import time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        transformers = import_framework("transformers", "huggingface")
        model = str(artifact_path) if artifact_path is not None else stage.model
        options = {"device": "cuda:0" if device == CUDA else CPU, **(stage.options or {})}
        try:
            pipe = transformers.pipeline(stage.task, model=model, **options)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for a bad model/task
            reason = short_reason(exc)
            raise ModelLoadError(f"cannot load Hugging Face pipeline {stage.task!r} from {model}: {reason}") from exc
        return cls(pipe, device)

    @classmethod
    def cuda_available(cls) -> bool:
        torch = import_framework("torch", "huggingface")
        return torch.cuda.is_available()

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        items = convert.to_items(batch)
        output = self.model(items, **(parameters or {}))
        # Some tasks return a bare result for a one-item list; keep one result per data point.
        return output if isinstance(output, list) and len(output) == len(items) else [output]
