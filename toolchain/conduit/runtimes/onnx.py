"""ONNX: an onnxruntime InferenceSession; input names, dtypes and ranks are read from the model.

A model with one input takes the request's data as that input (cast to the declared dtype, e.g.
float32). A model with several inputs takes one JSON object per data point, keyed by input name.
A model with one output returns it; several outputs become one {output name: value} per data point.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from conduit.errors import InputError, ModelLoadError
from conduit.runtimes import convert
from conduit.runtimes.base import CPU, CUDA, Runtime, import_framework, require_file, short_reason

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"

# onnxruntime type strings -> numpy dtypes
DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


class OnnxRuntime(Runtime):
    model_type: ClassVar[str] = "onnx"
    uses_device: ClassVar[bool] = True

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> OnnxRuntime:
        ort = import_framework("onnxruntime", "onnx")
        artifact_path = require_file(artifact_path)
        providers = [CUDA_PROVIDER, CPU_PROVIDER] if device == CUDA else [CPU_PROVIDER]
        try:
            session = ort.InferenceSession(str(artifact_path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelLoadError(f"{artifact_path.name} is not a loadable ONNX model ({short_reason(exc)})") from exc
        return cls(session, device)

    @classmethod
    def cuda_available(cls) -> bool:
        ort = import_framework("onnxruntime", "onnx")
        return CUDA_PROVIDER in ort.get_available_providers()

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        inputs = self.model.get_inputs()
        if len(inputs) == 1:
            feeds = {inputs[0].name: _input_array(inputs[0], batch)}
        else:
            feeds = {spec.name: _input_array(spec, _column(batch, spec.name)) for spec in inputs}
        try:
            outputs = self.model.run(None, feeds)
        except Exception as exc:  # the inputs passed the declared checks; onnxruntime says what else is wrong
            shapes = {name: list(array.shape) for name, array in feeds.items()}
            raise InputError(f"the model rejected inputs of shape {shapes}: {short_reason(exc)}") from exc
        if len(outputs) == 1:
            return outputs[0]
        return {spec.name: value for spec, value in zip(self.model.get_outputs(), outputs)}


def _input_array(spec: Any, values: Any) -> np.ndarray:
    """`values` as the declared dtype and rank; a data point one rank short gets a batch axis."""
    dtype = DTYPES.get(spec.type)
    if dtype is None:
        raise InputError(f"input {spec.name!r} has type {spec.type}, which conduit cannot build from JSON")
    expects = f"input {spec.name!r} expects {np.dtype(dtype).name}"
    try:
        array = np.asarray(values) if dtype is np.object_ else convert.numeric_array(values, expects)
        with np.errstate(over="ignore"):  # beyond float32 is inf: the flow's output check says so
            array = array.astype(dtype)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{expects}, received {convert.describe(values)}"
        ) from exc
    if array.ndim == len(spec.shape) - 1:
        array = array[np.newaxis, ...]
    _check_shape(spec, array)
    return array


def _check_shape(spec: Any, array: np.ndarray) -> None:
    declared = list(spec.shape)
    fixed_dims_match = len(declared) == array.ndim and all(
        not isinstance(want, int) or want == got for want, got in zip(declared[1:], array.shape[1:])
    )
    if not fixed_dims_match:
        expected = ["N"] + [dim if isinstance(dim, int) else "?" for dim in declared[1:]]
        raise InputError(
            f"input {spec.name!r} expected shape {_shape_text(expected)} (N data points), "
            f"received {list(array.shape)}"
        )


def _column(batch: Any, name: str) -> list[Any]:
    points = batch if isinstance(batch, list) else [batch]
    if not all(isinstance(point, dict) and name in point for point in points):
        raise InputError(f"this model has several inputs: send one object per data point with key {name!r}")
    return [point[name] for point in points]


def _shape_text(dims: list[Any]) -> str:
    return "[" + ", ".join(str(dim) for dim in dims) + "]"
