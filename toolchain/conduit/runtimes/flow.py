"""A flow: the manifest's stages, loaded once, run in order on each request.

    flow = Flow.load(manifest)
    result = flow.predict([[5.1, 3.5, 1.4, 0.2]])   # the list the endpoint returns under "result"

Each stage's output feeds the next (a scaler into a classifier, a torch embedding into xgboost).
Per stage: `pre` hook -> model -> `post` hook (see conduit.runtimes.hooks for hook signatures).
Every error raised by a stage names it, e.g. `flow[1] (xgboost_classifier): ...`.

Devices: when the hardware is a GPU, stages whose framework can use one (torch, onnx, Hugging
Face) are placed on CUDA if their framework sees it; otherwise they run on the CPU and the flow
emits one GpuUnavailableWarning.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from conduit.errors import ConduitError, InputError, ModelLoadError, Overloaded
from conduit.hardware import spec
from conduit.runtimes import convert
from conduit.runtimes.base import CPU, CUDA, Runtime, runtime_class
from conduit.runtimes.hooks import Hook, HookFunctions, load_hook

if TYPE_CHECKING:  # the manifest model (pydantic) is not needed to run a flow
    from conduit.manifest.model import Manifest, Stage

# Exceptions a framework raises for input it cannot use (sklearn ValueError, torch RuntimeError...).
MODEL_INPUT_ERRORS = (ValueError, TypeError, RuntimeError, IndexError, KeyError)


class GpuUnavailableWarning(RuntimeWarning):
    """The hardware asks for a GPU but this machine has none the framework can use."""


class FlowError(ConduitError):
    """The flow broke the one-result-per-data-point contract (a stage or hook bug)."""

    http_status = 500
    type = "flow_error"


class FlowStage:
    """One loaded stage: its runtime and optional hooks."""

    def __init__(self, index: int, model_type: str, runtime: Runtime, pre: Optional[Hook], post: Optional[Hook]):
        self.label = stage_label(index, model_type)
        self.runtime = runtime
        self.pre = pre
        self.post = post

    def prepare(self, value: Any, context: dict[str, Any]) -> Any:
        """The `pre` hook's output (the value itself without one)."""
        with _labelled(self.label):
            return value if self.pre is None else self.pre(value, **context)

    def finish(self, value: Any, context: dict[str, Any]) -> Any:
        """The model, then the `post` hook, on what `prepare` returned."""
        with _labelled(self.label):
            try:
                output = self.runtime.predict(value, context["parameters"])
            except MODEL_INPUT_ERRORS as exc:
                if type(exc).__name__ == "OutOfMemoryError":  # torch's CUDA OOM: the device is full, not the input bad
                    raise Overloaded(f"the GPU ran out of memory on input {convert.describe(value)}") from exc
                raise InputError(f"the model rejected input {convert.describe(value)}: {exc}") from exc
            if self.post is not None:
                output = self.post(output, **context)
            return output

    def require_finite(self, output: Any, value: Any) -> None:
        """NaN and infinity have no JSON form (they would reach the caller as null): a 422, unless
        the post hook turned them into something that has one. Asked of the last stage only: NaN
        between stages may be meant (XGBoost reads it as a missing value)."""
        count = convert.non_finite_count(output)
        if count:
            source = "the model" if self.post is None else f"the post hook {self.post.spec}"
            raise InputError(
                f"{source} returned a non-finite value (NaN or infinity) {count} time(s) for input "
                f"{convert.describe(value)}: check that the input is in the range the model was trained on"
                + ("" if self.post is not None else ", or add a post hook that handles such values")
            )


class Flow:
    def __init__(self, stages: list[FlowStage]) -> None:
        self.stages = stages
        # Whether a hook declares `files`: otherwise uploaded files would go nowhere.
        hooks = [hook for stage in stages for hook in (stage.pre, stage.post) if hook is not None]
        self.takes_files = any("files" in hook.keywords for hook in hooks)

    @classmethod
    def load(cls, manifest: Manifest, functions: Optional[HookFunctions] = None) -> Flow:
        """Load every stage once: artifacts, hooks, and the device each one runs on.

        `functions` maps (stage index, "pre"/"post") to a function to call instead of importing the
        manifest's `file.py:function` (`Conduit.run()` passes the live ones it was given)."""
        wants_gpu = spec(manifest.resolved_hardware).is_gpu
        stages, on_cpu = [], []
        for index, stage in enumerate(manifest.flow):
            label = stage_label(index, stage.model_type)
            with _labelled(label):
                runtime_cls = runtime_class(stage.model_type)
                device = _device(runtime_cls, wants_gpu)
                if wants_gpu and runtime_cls.uses_device and device == CPU:
                    on_cpu.append(label)
                stages.append(_load_stage(index, stage, runtime_cls, manifest, device, functions or {}))
        if on_cpu:
            warnings.warn(
                f"hardware {manifest.resolved_hardware} is a GPU but CUDA is not available here: "
                f"{', '.join(on_cpu)} run on the CPU",
                GpuUnavailableWarning,
                stacklevel=2,
            )
        return cls(stages)

    def predict(
        self, data: Any, parameters: Optional[dict] = None, files: Optional[dict] = None, inputs: Optional[list] = None
    ) -> list:
        """The JSON-ready result list: one item per data point. The data points are the rows the
        first stage's `pre` hook returns (files may become rows there), else the request's data;
        given a list as `inputs`, the flow appends the pre hook's rows to it (for the prediction log)."""
        if files and not self.takes_files:
            raise InputError(
                f"this flow takes no files (sent: {', '.join(sorted(files))}): only a pre or post hook "
                "with a `files` parameter receives them; send the data as JSON, or add such a hook"
            )
        context = {"parameters": parameters or {}, "files": files or {}}
        first, *rest = self.stages
        value = first.prepare(data, context)
        if inputs is not None and first.pre is not None:
            inputs.append(value)
        expected = self._expected_points(data, value)
        staged, value = value, first.finish(value, context)
        for stage in rest:
            staged = stage.prepare(value, context)
            value = stage.finish(staged, context)
        with _labelled(self.stages[-1].label):
            self.stages[-1].require_finite(value, staged)
        result = convert.to_rows(value)
        if expected is not None and len(result) != expected:
            raise FlowError(
                f"the flow returned {len(result)} results for {expected} data points: "
                "the last stage (or its post hook) must return one result per data point"
            )
        return result

    def _expected_points(self, data: Any, prepared: Any) -> Optional[int]:
        pre = self.stages[0].pre
        expected = convert.count_rows(prepared) if pre is not None else None
        if expected is None:
            expected = convert.count_points(data)
        if expected == 0 and pre is not None:
            raise InputError(f"{self.stages[0].label}: the pre hook {pre.spec} returned no data points")
        if expected == 0 or (expected is None and pre is None):
            raise InputError(
                "no data points: send a JSON array of data points, e.g. [[5.1, 3.5, 1.4, 0.2]] "
                "(a request with files only needs a pre hook that turns them into data points)"
            )
        return expected


def stage_label(index: int, model_type: Any) -> str:
    """How errors and warnings name a stage: `flow[1] (xgboost_classifier)`."""
    return f"flow[{index}] ({model_type})"


def _load_stage(
    index: int, stage: Stage, runtime_cls: type[Runtime], manifest: Manifest, device: str, functions: HookFunctions
) -> FlowStage:
    pre, post = (_hook(stage, index, key, manifest, functions) for key in ("pre", "post"))
    runtime = runtime_cls.load(stage, artifact_path(stage, manifest), device)
    return FlowStage(index, str(stage.model_type), runtime, pre, post)


def _hook(stage: Stage, index: int, key: str, manifest: Manifest, functions: HookFunctions) -> Optional[Hook]:
    spec = getattr(stage, key)
    if not spec:
        return None
    function = functions.get((index, key))
    return Hook(spec, function) if function is not None else load_hook(spec, manifest.base_dir)


def artifact_path(stage: Stage, manifest: Manifest) -> Optional[Path]:
    """The stage's artifact as an absolute path; for Hugging Face, the local model folder if there is one."""
    if stage.is_huggingface:
        folder = manifest.resolve(stage.model) if stage.model else None
        return folder if folder is not None and folder.is_dir() else None
    if not stage.path:
        raise ModelLoadError(f"no path: model_type {stage.model_type} needs an artifact path")
    return manifest.resolve(stage.path)


def _device(runtime_cls: type[Runtime], wants_gpu: bool) -> str:
    return CUDA if wants_gpu and runtime_cls.uses_device and runtime_cls.cuda_available() else CPU


class _labelled:
    """Prefix a ConduitError raised inside with the stage label, keeping its class (and HTTP status)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if isinstance(exc, ConduitError) and not str(exc).startswith("flow["):
            try:
                labelled = type(exc)(f"{self.label}: {exc}")
            except TypeError:  # an error class with its own constructor: keep it as it is
                return
            raise labelled from exc
        return
