"""Which manifest fields each target honours, and what happens instead where one does not.

`TARGETS` below is the one table: per target, per field, either `HONOURED` or a `Gap` (when the
value is not honoured, and the one phrase saying what happens instead). Nothing is silently
ignored: `conduit validate` and `conduit apply` print each gap as a warning naming the field and
the target, and the store keeps them with the revision for `conduit status`. When a later change
makes a target honour a field, its row becomes `HONOURED` and the warning goes away.

Some remarks hold on every target (`EVERYWHERE`): a GPU asked for by a flow whose frameworks
never use one (scikit-learn, XGBoost, spaCy) is only a cost.

What the targets really do today:
- local: the gateway (`conduit.targets.local.gateway`) honours the scaling fields: min_replicas
  (0 scales to zero), max_replicas, cooldown, replica_concurrency, and serves each deployment
  under its project. `memory` is enforced where a memory cgroup is writable
  (`conduit.targets.local.cgroup.why_unavailable` says why not, elsewhere). Each Bento runs in
  an environment of its own (`conduit.environments`: uv, its python_version, its requirements,
  requirements_file included); `cpu` workers share the machine's cores; a GPU is used only when
  the framework sees CUDA.
- kubernetes: every field is honoured (KServe/Knative replicas, concurrency target and
  scale-to-zero retention, the project as the namespace, requests and limits, the GPU request
  and node selector, the image's Python and requirements), except what KServe's logger cannot
  do of a `prediction_log` the manifest writes: it needs a sink `url` (so the default, a log with
  no url, records nothing there), always sends bodies (payloads: false renders no logger), never
  samples, keeps nothing. Its raw flavour (`FLAVOURS`: Deployment + Service + HPA, no KServe)
  renders no logger at all, url or not, and its HPA scales on CPU, not on replica_concurrency.
  The local target records to SQLite and has no use for `prediction_log.url`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

from conduit.hardware import spec
from conduit.manifest.problems import Problem

# Not a GPU: the NVIDIA driver's list of GPUs is empty, or CUDA_VISIBLE_DEVICES hides them all.
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
HIDDEN_DEVICES = ("", "-1", "none", "NoDevFiles")

Condition = Callable[[Any], bool]


@dataclass(frozen=True)
class Gap:
    """A field a target does not honour: `when` the manifest's value is affected, `instead` says
    (a `str.format` template over `facts()` and `default`) what happens instead."""

    when: Condition
    instead: str
    hint: Optional[str] = None


HONOURED = None  # a row that needs no warning
Row = Union[Gap, None]


# facts the phrases and conditions read


def cores() -> int:
    return os.cpu_count() or 1


def cuda_visible() -> bool:
    """Whether a CUDA GPU is visible here, read from the driver without importing a framework."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in HIDDEN_DEVICES:
        return False
    return NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir())


def asks_for_gpu(manifest: Any) -> bool:
    return spec(manifest.resolved_hardware).is_gpu


def gpu_stages(manifest: Any) -> list[str]:
    """Labels of the stages whose framework can run on a GPU (torch, ONNX, Hugging Face)."""
    from conduit.runtimes.base import runtime_class  # only asked when the hardware is a GPU
    from conduit.runtimes.flow import stage_label

    return [
        stage_label(index, stage.model_type)
        for index, stage in enumerate(manifest.flow)
        if runtime_class(stage.model_type).uses_device
    ]


def kserve_logger_gap(manifest: Any) -> str:
    """What KServe's logger does not do of the manifest's `prediction_log` ('' for none). Left
    out, the log is on (the local target's default), and a cluster has no sink to send it to."""
    settings = manifest.prediction_log_settings
    if not settings.enabled:
        return ""
    if settings.url is None:
        return "prediction_log records nothing on kubernetes without prediction_log.url (KServe's logger needs a sink to send to)"
    if not settings.payloads:
        return "prediction_log.payloads false: KServe's logger always sends bodies, so no logger is rendered"
    ignored = [key for key in ("sample", "retention_days", "max_mb") if key in settings.model_fields_set]
    if ignored:
        return (
            f"prediction_log {' and '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} not honoured by the kubernetes "
            "target: KServe's logger sends every request to the sink, which keeps them"
        )
    return ""


def memory_unenforced() -> Optional[str]:
    """Why the local target cannot hold a replica to its `memory` here; None where it does. A
    conduit without the cgroup module enforces nothing."""
    try:
        from conduit.targets.local.cgroup import why_unavailable
    except ImportError:
        return "by the local target: a replica may use more"
    reason = why_unavailable()
    return None if reason is None else f"on this machine: {reason}"


def facts(manifest: Any) -> dict[str, Any]:
    gpu = asks_for_gpu(manifest) and gpu_stages(manifest)
    return {
        "kserve_logger_gap": kserve_logger_gap(manifest),
        "memory_unenforced": memory_unenforced(),
        "resolved_replica_concurrency": manifest.resolved_replica_concurrency,
        **{field: getattr(manifest, field) for field in FIELDS},
        "name": manifest.name,
        "hardware": manifest.resolved_hardware,
        "cores": cores(),
        "gpu_stages": ", ".join(gpu or []),
        "frameworks": ", ".join(sorted({str(stage.model_type) for stage in manifest.flow})),
    }


# conditions


def always(manifest: Any) -> bool:
    return True


def gpu_without_cuda(manifest: Any) -> bool:
    return asks_for_gpu(manifest) and bool(gpu_stages(manifest)) and not cuda_visible()


def gpu_never_used(manifest: Any) -> bool:
    return asks_for_gpu(manifest) and not gpu_stages(manifest)


FIELDS = (
    "project", "hardware", "cpu", "memory", "cooldown", "min_replicas", "max_replicas", "replica_concurrency",
    "requirements_file", "python_version", "prediction_log",
)

TARGETS: dict[str, dict[str, Row]] = {
    "local": {
        "hardware": Gap(
            gpu_without_cuda, "hardware {hardware}{default} is a GPU but none is visible here: {gpu_stages} will run on the CPU"
        ),
        "cpu": Gap(
            lambda m: m.cpu > cores(),
            "cpu {cpu}{default} is more than the {cores} cores here: the local target's {cpu} workers share them",
            "lower cpu to {cores}",
        ),
        "memory": Gap(lambda m: memory_unenforced() is not None, "memory {memory:g} GB{default} is not enforced {memory_unenforced}"),
        **{
            field: HONOURED
            for field in (
                "project", "cooldown", "min_replicas", "max_replicas", "replica_concurrency", "requirements_file", "python_version",
            )
        },
        "prediction_log": Gap(
            lambda m: m.prediction_log is not None and m.prediction_log.url is not None,
            "prediction_log.url is used by the kubernetes target only: the local target records to "
            "$CONDUIT_HOME/predictions/{name}.db",
        ),
    },
    "kubernetes": {
        **{field: HONOURED for field in FIELDS},
        "prediction_log": Gap(lambda m: bool(kserve_logger_gap(m)), "{kserve_logger_gap}"),
    },
}

# What a flavour of a target changes in its rows: (target, flavour) -> field -> row.
FLAVOURS: dict[tuple[str, str], dict[str, Row]] = {
    ("kubernetes", "raw"): {
        "prediction_log": Gap(
            lambda m: m.prediction_log_settings.enabled,
            "prediction_log is not honoured by the kubernetes raw flavour: it has no KServe logger, "
            "so nothing is recorded{default}",
            "use the serverless flavour (--flavor serverless) with prediction_log.url, or set prediction_log.enabled: false",
        ),
        "replica_concurrency": Gap(
            always,
            "replica_concurrency {resolved_replica_concurrency}{default} is not honoured by the kubernetes raw flavour: "
            "its HorizontalPodAutoscaler scales on CPU utilisation",
            "use the serverless flavour (--flavor serverless) to scale on requests in flight",
        ),
    },
}

# Remarks that hold whatever the target: field -> gap.
EVERYWHERE: dict[str, Gap] = {
    "hardware": Gap(
        gpu_never_used,
        "hardware {hardware} is a GPU but a {frameworks} flow never uses one: it runs on the CPU",
        "use hardware: CPU",
    ),
}


def unhonoured(manifest: Any, target: str, flavour: Optional[str] = None) -> list[Problem]:
    """One warning per field whose value `target` (in `flavour`) does not honour, in the table's field order."""
    rows = {**TARGETS[target], **FLAVOURS.get((target, flavour or ""), {})}
    known = facts(manifest)
    found = []
    for field in FIELDS:
        for gap in (rows[field], EVERYWHERE.get(field)):
            if gap is not None and gap.when(manifest):
                found.append(_warning(field, gap, manifest, known))
    return found


def _warning(field: str, gap: Gap, manifest: Any, known: dict[str, Any]) -> Problem:
    hint = gap.hint.format(**known) if gap.hint else None
    # A value the manifest does not write is a default: say so, or the warning reads as a mystery.
    default = "" if field in manifest.model_fields_set else " (the default)"
    message = gap.instead.format(**known, default=default)
    return Problem(message, (field,), getattr(manifest, field), hint, severity="warning")


def check_for(target: str, flavour: Optional[str] = None) -> Callable[[Any], list[Problem]]:
    """The check the loader runs after defaults (so its warnings get a file and line)."""
    return lambda manifest: unhonoured(manifest, target, flavour)
