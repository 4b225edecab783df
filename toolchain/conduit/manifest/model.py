"""The manifest: the single source of truth for a deployment.

`conduit.yaml` (via `conduit.manifest.loader`) and `Conduit(...)` (via `conduit.api`) both build a
`Manifest`; everything downstream (render, build, targets) reads only this object. The JSON Schema
in `conduit.schema.json` is generated from these classes (`conduit schema`).

These classes check the shape of a manifest (types, ranges, names, unknown keys). What needs the
file system or several fields at once (files exist, min <= max, memory fits the hardware) is
checked by `conduit.manifest.semantics`, which `load()` and `Conduit(...)` both run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from conduit.hardware import HARDWARE, MEMORY_MIN_GB, Hardware
from conduit.manifest.names import DEFAULT_PROJECT, NAME_MAX, NAME_PATTERN, PROJECT_MAX, PROJECT_PATTERN
from conduit.model_types import MODEL_TYPES, ModelType

API_VERSION: Literal["conduit/v1"] = "conduit/v1"
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
HOOK_PATTERN = r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$"
HOOK_KEYS = ("pre", "post")
URL_PATTERN = r"^https?://[^\s]+$"
MEMORY_MAX_GB = 256.0  # the largest row of the hardware table; each row may allow less
REPLICA_CONCURRENCY_MAX = 1000


def is_stage_tuple(value: Any) -> bool:
    """The seed's tuple form: `[model_type, path]`, optionally with `{pre: ..., post: ...}` third."""
    if not isinstance(value, (list, tuple)) or not 2 <= len(value) <= 3 or not isinstance(value[0], str):
        return False
    return len(value) == 2 or (isinstance(value[2], dict) and set(value[2]) <= set(HOOK_KEYS))


def stage_mapping(value: Any) -> Any:
    """A stage as a mapping; anything that is not a tuple-form stage comes back unchanged."""
    if not is_stage_tuple(value):
        return value
    stage: dict[str, Any] = {"model_type": value[0], "path": value[1]}
    if len(value) == 3:
        stage.update(value[2])
    return stage


def is_single_stage(flow: Any) -> bool:
    """`flow:` holding one stage (a mapping or a tuple) rather than a list of stages."""
    return isinstance(flow, dict) or is_stage_tuple(flow)


def stage_list(flow: Any) -> Any:
    """`flow` as a list of stages; anything that is neither one stage nor a list comes back unchanged."""
    return [flow] if is_single_stage(flow) else flow


def default_hardware(model_types: Iterable[ModelType]) -> Hardware:
    """CPU unless some stage wants a GPU (torch, ONNX, Hugging Face): then that stage's default."""
    defaults = [MODEL_TYPES[model_type].default_hardware for model_type in model_types]
    return next((hardware for hardware in defaults if hardware != Hardware.CPU), Hardware.CPU)


class Stage(BaseModel):
    """One model in the flow. Artifact stages name a `path`; a Hugging Face stage names `task` and `model`."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    model_type: ModelType = Field(description="How conduit loads and calls this model.", examples=["sklearn"])
    path: Optional[str] = Field(
        None,
        description="The artifact, relative to the manifest file: a file, or a folder for spaCy. "
        "Not used by huggingface_pipeline.",
        examples=["model.pkl"],
    )
    task: Optional[str] = Field(
        None,
        description="Hugging Face pipeline task (huggingface_pipeline only).",
        examples=["text-classification"],
    )
    model: Optional[str] = Field(
        None,
        description="Hugging Face model (huggingface_pipeline only): a local folder relative to the "
        "manifest, or a hub id already in the local Hugging Face cache.",
        examples=["hf_model"],
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for transformers.pipeline(...) (huggingface_pipeline only).",
        examples=[{"top_k": None}],
    )
    pre: Optional[str] = Field(
        None,
        pattern=HOOK_PATTERN,
        description="Hook run on the input before the model: `file.py:function`, relative to the manifest.",
        examples=["hooks.py:to_features"],
    )
    post: Optional[str] = Field(
        None,
        pattern=HOOK_PATTERN,
        description="Hook run on the model output: `file.py:function`, relative to the manifest.",
        examples=["hooks.py:to_labels"],
    )

    @model_validator(mode="before")
    @classmethod
    def _tuple_form(cls, value: Any) -> Any:
        return stage_mapping(value)

    @property
    def is_huggingface(self) -> bool:
        return self.model_type == ModelType.HUGGINGFACE_PIPELINE


class Batching(BaseModel):
    """Adaptive batching: concurrent requests are merged into one model call."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(32, ge=1, le=4096, description="Most data points in one model call.", examples=[32])
    max_latency_ms: int = Field(
        10,
        ge=1,
        le=60000,
        description="Longest a request may wait for its batch to fill, in milliseconds.",
        examples=[10],
    )


class PredictionLog(BaseModel):
    """The prediction log: what is recorded of each request, and for how long.

    The local target writes it to SQLite (`$CONDUIT_HOME/predictions/<name>.db`, read back with
    `conduit predictions`); the kubernetes target renders KServe's `logger`, which sends CloudEvents
    to `url`. Leaving the whole field out means the defaults below: everything recorded."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Record requests at all.", examples=[True])
    sample: float = Field(
        1.0, ge=0.0, le=1.0, description="Fraction of requests recorded, 0.0 to 1.0.", examples=[1.0]
    )
    payloads: bool = Field(
        True,
        description="Record each data point's input and output; false keeps only ids, timings, "
        "status and errors (for sensitive data).",
        examples=[True],
    )
    retention_days: int = Field(
        30, ge=1, le=3650, description="Records older than this many days are deleted.", examples=[30]
    )
    max_mb: int = Field(
        512, ge=1, le=1048576, description="Most megabytes the log may hold; the oldest records go first.", examples=[512]
    )
    url: Optional[str] = Field(
        None,
        pattern=URL_PATTERN,
        description="kubernetes target: where KServe's logger sends each request and response as "
        "CloudEvents (an http(s) URL of a sink). The local target does not use it.",
        examples=["http://message-dumper.default.svc.cluster.local"],
    )


class Manifest(BaseModel):
    """A conduit deployment: what to serve, on what hardware, and how to scale it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, title="conduit.yaml")

    api_version: Literal["conduit/v1"] = Field(
        API_VERSION, alias="apiVersion", description="Manifest format version.", examples=[API_VERSION]
    )
    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=NAME_MAX,
        description="Deployment name: lowercase letters, digits and hyphens, at most 20 characters, "
        "starting with a letter and ending with a letter or digit (DNS-safe). One name, one endpoint.",
        examples=["iris-classifier"],
    )
    project: str = Field(
        DEFAULT_PROJECT,
        pattern=PROJECT_PATTERN,
        max_length=PROJECT_MAX,
        description="The project the deployment belongs to: lowercase letters, digits and hyphens, at "
        "most 63 characters (a DNS label). Locally it is part of the endpoint (/v1/<project>/<name>/predict); "
        "on Kubernetes it is the namespace, unless --namespace is given.",
        examples=[DEFAULT_PROJECT],
    )
    flow: list[Stage] = Field(
        min_length=1,
        description="One stage, or a list of stages run in order in one process; each stage's output "
        "feeds the next. A stage may be written `[model_type, path]`.",
        examples=[[{"model_type": "sklearn", "path": "model.pkl"}]],
    )
    hardware: Optional[Hardware] = Field(
        None,
        description="Where the model runs. Defaults to CPU for sklearn, xgboost and spaCy flows and "
        "AMPERE_A5000 for torch, ONNX and Hugging Face flows. GPU and A10 are deprecated.",
        examples=["CPU"],
    )
    cpu: int = Field(2, ge=1, le=32, description="CPU cores per replica.", examples=[2])
    memory: float = Field(
        8.0,
        ge=MEMORY_MIN_GB,
        le=MEMORY_MAX_GB,
        description="Memory per replica in GB; the upper bound depends on the hardware.",
        examples=[8.0],
    )
    cooldown: int = Field(
        60, ge=0, le=86400, description="Seconds idle before an inactive replica is scaled down.", examples=[60]
    )
    min_replicas: int = Field(0, ge=0, le=100, description="Replicas kept running; 0 scales to zero.", examples=[0])
    max_replicas: int = Field(2, ge=1, le=100, description="Most replicas at once.", examples=[2])
    replica_concurrency: Optional[int] = Field(
        None,
        ge=1,
        le=REPLICA_CONCURRENCY_MAX,
        description="In-flight requests per replica before another replica is started (a soft target, "
        "as Knative's concurrency target). Left out: one batch with batching, else the hardware's "
        "default (4 on CPU, 1 on a GPU).",
        examples=[4],
    )
    requirements_file: Optional[str] = Field(
        None,
        description="A pip requirements file (relative to the manifest) installed into the deployment.",
        examples=["requirements.txt"],
    )
    force_rebuild: bool = Field(False, description="Rebuild the bento even when nothing changed.", examples=[False])
    python_version: Optional[Literal["3.9", "3.10", "3.11", "3.12", "3.13"]] = Field(
        None,
        description='Python of the deployment, as a string ("3.11"). Default: the Python conduit runs '
        "under, which is most likely the one that made the model (BentoML defaults a Bento to the "
        "Python that builds it; the seed's 3.10 reached its end of life in October 2026 and cannot "
        "install current scikit-learn or NumPy). 3.8 is refused: its support ended in September 2023.",
        examples=["3.11"],
    )
    batching: Optional[Batching] = Field(
        None,
        description="Opt-in adaptive batching of concurrent requests.",
        examples=[{"max_batch_size": 32, "max_latency_ms": 10}],
    )
    prediction_log: Optional[PredictionLog] = Field(
        None,
        description="The prediction log (every request's ids, timing, status, input and output); "
        "left out, every request is recorded with its payloads, kept 30 days or 512 MB.",
        examples=[{"sample": 1.0, "payloads": True, "retention_days": 30, "max_mb": 512}],
    )

    # Folder that relative paths resolve against: the manifest's folder, or the working directory
    # for `Conduit(...)`. Not serialised; part of equality (same text, other folder = other files).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="before")
    @classmethod
    def _single_stage(cls, value: Any) -> Any:
        """`flow` may be one stage (mapping or tuple) instead of a list of stages."""
        if isinstance(value, dict) and is_single_stage(value.get("flow")):
            value = {**value, "flow": stage_list(value["flow"])}
        return value

    @field_validator("hardware", mode="before")
    @classmethod
    def _hardware_alias(cls, value: Any) -> Any:
        """Accept member names too, so the seed's alias `AMPERE_A100` means `A100`."""
        if isinstance(value, str) and value in Hardware.__members__:
            return Hardware[value].value
        return value

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def with_base_dir(self, base_dir: Path | str) -> Manifest:
        self._base_dir = Path(base_dir).resolve()
        return self

    def resolve(self, relative: str) -> Path:
        """A path from the manifest, made absolute against the manifest's folder."""
        return (self._base_dir / relative).resolve()

    @property
    def prediction_log_settings(self) -> PredictionLog:
        """The prediction log as configured, or the defaults when the manifest leaves it out."""
        return self.prediction_log or PredictionLog.model_validate({})

    @property
    def resolved_python_version(self) -> str:
        """`python_version`, or the running interpreter's "X.Y" when the manifest does not say."""
        return self.python_version or "{}.{}".format(*sys.version_info[:2])

    @property
    def resolved_hardware(self) -> Hardware:
        """The hardware asked for, or the default for the flow (a GPU if any stage wants one)."""
        if self.hardware is not None:
            return self.hardware
        return default_hardware(stage.model_type for stage in self.flow)

    @property
    def resolved_replica_concurrency(self) -> int:
        """The concurrency target asked for; else, with batching, one full batch per replica (a lower
        target would scale out before a batch could form); else the hardware's default."""
        if self.replica_concurrency is not None:
            return self.replica_concurrency
        if self.batching is not None:
            return min(self.batching.max_batch_size, REPLICA_CONCURRENCY_MAX)
        return HARDWARE[self.resolved_hardware].replica_concurrency
