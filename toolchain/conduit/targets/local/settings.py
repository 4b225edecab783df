"""What the gateway needs to serve a revision, read from its manifest at apply and kept with the
revision in the store (`Revision.settings`), so the gateway never loads a manifest itself and a
rollback serves with the settings of the revision it brings back."""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from typing import Any, Optional

from conduit.targets.local.autoscaler import Scaling

DEFAULT_PROJECT = "default"
READY_TIMEOUT_ENV = "CONDUIT_READY_TIMEOUT"
DEFAULT_READY_TIMEOUT_S = 300.0  # a large Hugging Face model on a busy CPU loads slowly
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class ServeSettings:
    project: str = DEFAULT_PROJECT
    min_replicas: int = 0
    max_replicas: int = 2
    cooldown_s: float = 60.0
    replica_concurrency: int = DEFAULT_CONCURRENCY
    memory_bytes: Optional[int] = None
    python: str = sys.executable  # the interpreter of the revision's environment
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S

    @property
    def scaling(self) -> Scaling:
        return Scaling(self.min_replicas, self.max_replicas, self.cooldown_s, self.replica_concurrency)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> ServeSettings:
        known = {key: value for key, value in stored.items() if key in cls.__dataclass_fields__}
        return cls(**known)


def ready_timeout() -> float:
    return float(os.environ.get(READY_TIMEOUT_ENV) or DEFAULT_READY_TIMEOUT_S)


def from_manifest(manifest: Any, python: Optional[str] = None) -> ServeSettings:
    concurrency = getattr(manifest, "resolved_replica_concurrency", None) or DEFAULT_CONCURRENCY
    return ServeSettings(
        project=getattr(manifest, "project", None) or DEFAULT_PROJECT,
        min_replicas=manifest.min_replicas,
        max_replicas=max(manifest.max_replicas, manifest.min_replicas, 1),
        cooldown_s=float(manifest.cooldown),
        replica_concurrency=int(concurrency),
        memory_bytes=int(manifest.memory * 2**30),  # GB as the Kubernetes render writes it: Gi
        python=python or sys.executable,
        ready_timeout_s=ready_timeout(),
    )
