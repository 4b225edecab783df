"""What a conduit Manifest means in Kubernetes terms: pure functions, one per concern.

The templates in `templates/kubernetes/` only place these values; every number, label and GPU
detail comes from the Manifest and from the one hardware table (`conduit.hardware.HARDWARE`).
The container is built here once and shared by both flavours (KServe and plain Deployment).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

from conduit.hardware import HARDWARE, HardwareSpec
from conduit.manifest import Manifest
from conduit.serving.auth import API_KEY_SHA256_ENV

# BentoML serves on 3000 inside the images `bentoml containerize` builds.
BENTO_PORT = 3000
# KServe expects the custom predictor's container under this name.
CONTAINER_NAME = "kserve-container"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
SECRET_KEY = "api-key-sha256"
MANAGED_BY = "conduit"
# autoscaling/v2 refuses a longer stabilization window.
HPA_MAX_WINDOW_S = 3600
HPA_CPU_UTILIZATION = 70


@dataclass(frozen=True)
class ImageRef:
    """`image` as given, and the Bento tag it runs (`name:version`), when known."""

    image: str
    bento_tag: Optional[str] = None

    @property
    def version(self) -> Optional[str]:
        return self.bento_tag.split(":", 1)[1] if self.bento_tag and ":" in self.bento_tag else None


def image_ref(manifest: Manifest, image: Optional[str], bento_tag: Optional[str] = None) -> ImageRef:
    """The image to run. Without one, the Bento's own tag is the image name (what
    `bentoml containerize` tags by default); without either, the deployment name alone."""
    chosen = image or bento_tag or manifest.name
    return ImageRef(chosen, bento_tag or _tag_from_image(manifest.name, chosen))


def _tag_from_image(name: str, image: str) -> Optional[str]:
    """`registry/path/name:version` -> `name:version`; a digest or a missing tag says nothing."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last or ":" not in last:
        return None
    return f"{name}:{last.split(':', 1)[1]}"


def hardware_spec(manifest: Manifest) -> HardwareSpec:
    """The hardware row for this manifest; a deprecated row still renders, with a warning."""
    hardware = manifest.resolved_hardware
    row = HARDWARE[hardware]
    if row.deprecated_use is not None:
        warnings.warn(
            f"hardware {hardware} is deprecated: it renders a {row.gpu} ({row.node_product_label}); "
            f"use {row.deprecated_use} instead",
            FutureWarning,
            stacklevel=3,
        )
    return row


def memory_quantity(gigabytes: float) -> str:
    """GB from the manifest as a Kubernetes quantity (binary units, as BentoML's own resources)."""
    if float(gigabytes).is_integer():
        return f"{int(gigabytes)}Gi"
    return f"{round(gigabytes * 1024)}Mi"


def resources(manifest: Manifest, row: HardwareSpec) -> dict:
    """Requests equal limits (Guaranteed QoS: a model server should not be the first evicted)."""
    amounts = {"cpu": str(manifest.cpu), "memory": memory_quantity(manifest.memory)}
    limits = dict(amounts)
    if row.is_gpu:
        # Extended resources are set as a limit; Kubernetes copies it into the request.
        limits[GPU_RESOURCE] = "1"
    return {"requests": amounts, "limits": limits}


def scheduling(row: HardwareSpec) -> dict:
    """Pod fields that put a GPU deployment on a node with that GPU; nothing for CPU."""
    if not row.is_gpu:
        return {}
    return {
        "nodeSelector": {GPU_PRODUCT_LABEL: row.node_product_label},
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    }


def concurrency_target(manifest: Manifest) -> int:
    """`replica_concurrency` as Knative's concurrency target (`scaleMetric: concurrency`,
    `scaleTarget`): in-flight requests per replica before the autoscaler adds one.

    `containerConcurrency` is deliberately left unset (0, no limit). In Knative it is a hard
    limit: the queue-proxy never lets more requests into the pod, holding the rest in the
    activator, and Knative then scales on it instead of on the target. The local gateway treats
    replica_concurrency as a soft target (at max_replicas a replica takes more rather than leave
    requests waiting), so only the soft target is rendered, which behaves the same way."""
    return manifest.resolved_replica_concurrency


def namespace(manifest: Manifest, given: Optional[str] = None) -> str:
    """`--namespace` when given, else the manifest's project: one project, one namespace."""
    return given or manifest.project


def request_logger(manifest: Manifest) -> dict:
    """`prediction_log` -> KServe's `logger`: its agent sends each request and response as a
    CloudEvent to the sink at `url` (mode all). Nothing without a url, with the log off, or with
    payloads off, since KServe's logger always sends bodies (see targets/honoured.py)."""
    settings = manifest.prediction_log_settings
    if not settings.enabled or not settings.payloads or settings.url is None:
        return {}
    return {"logger": {"mode": "all", "url": settings.url}}


def secret_name(manifest: Manifest) -> str:
    return f"{manifest.name}-conduit-auth"


def labels(manifest: Manifest, ref: ImageRef) -> dict:
    """Name, project, revision and Bento on every object, so `kubectl get -l` finds a deployment's parts."""
    found = {
        "app.kubernetes.io/name": manifest.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "conduit.dev/project": manifest.project,
    }
    if ref.version and ref.bento_tag:  # a version comes from the tag
        # A label value cannot hold ':'; the exact tag is also in the annotations.
        found.update(
            {
                "app.kubernetes.io/version": ref.version,
                "conduit.dev/revision": ref.version,
                "conduit.dev/bento-tag": ref.bento_tag.replace(":", "."),
            }
        )
    return found


def selector(manifest: Manifest) -> dict:
    """The immutable part of the labels: a Deployment's selector may never change."""
    return {"app.kubernetes.io/name": manifest.name}


def tag_annotations(ref: ImageRef) -> dict:
    return {"conduit.dev/bento-tag": ref.bento_tag} if ref.bento_tag else {}


def knative_annotations(manifest: Manifest) -> dict:
    """cooldown -> how long Knative keeps the last replica after traffic stops."""
    return {
        "serving.kserve.io/deploymentMode": "Serverless",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": f"{manifest.cooldown}s",
    }


def _probe(path: str, period_s: int) -> dict:
    return {
        "httpGet": {"path": path, "port": BENTO_PORT},
        "periodSeconds": period_s,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }


def container(manifest: Manifest, ref: ImageRef, row: HardwareSpec) -> dict:
    """The one container both flavours run: the Bento image, the key hash from a Secret, the
    manifest's resources, and BentoML's own health paths (/readyz waits for the model load)."""
    return {
        "name": CONTAINER_NAME,
        "image": ref.image,
        # Knative accepts only these port names; plain Deployments do not mind.
        "ports": [{"name": "http1", "containerPort": BENTO_PORT, "protocol": "TCP"}],
        "env": [
            {
                "name": API_KEY_SHA256_ENV,
                "valueFrom": {"secretKeyRef": {"name": secret_name(manifest), "key": SECRET_KEY}},
            }
        ],
        "resources": resources(manifest, row),
        "readinessProbe": _probe("/readyz", 5),
        "livenessProbe": {**_probe("/livez", 10), "initialDelaySeconds": 10},
    }


def scale_down_window(manifest: Manifest) -> int:
    return min(manifest.cooldown, HPA_MAX_WINDOW_S)
