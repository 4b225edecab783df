"""The kubernetes target behind the `conduit.targets.Target` interface: apply, delete and render
(the functions of `conduit.targets.kubernetes`). Revisions, rollback, logs and status belong to
the cluster (Knative keeps the revisions), so those operations say which kubectl command to use.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from conduit.manifest.names import DEFAULT_PROJECT
from conduit.targets import Progress, Target
from conduit.targets import kubernetes as cluster

SELECTOR = "app.kubernetes.io/name={name}"


class KubernetesTarget(Target):
    name = "kubernetes"

    def __init__(
        self,
        namespace: Optional[str] = None,
        context: Optional[str] = None,
        flavor: str = "serverless",
        image: Optional[str] = None,
    ) -> None:
        self.namespace, self.context, self.flavor, self.image = namespace, context, flavor, image

    def apply(
        self,
        manifest: Any,
        *,
        manifest_path: Optional[str] = None,
        warnings: Sequence[str] = (),
        progress: Progress = print,
        api_key: Optional[str] = None,
    ) -> str:
        """`api_key` is not used: the cluster gets the key's hash from CONDUIT_API_KEY (a Secret)."""
        return cluster.apply(manifest, namespace=self.namespace, context=self.context, flavor=self.flavor, image=self.image)

    def delete(self, name: str, progress: Progress = print) -> None:
        """In --namespace, else in the default project's namespace: a name alone says no project."""
        cluster.delete(name, namespace=self.namespace, context=self.context)
        progress(f"🗑️  Deleted {name} from namespace {self.namespace or DEFAULT_PROJECT}")

    def render(self, manifest: Any, out: Path, progress: Progress = print) -> list[Path]:
        written = cluster.render_to(manifest, out, flavor=self.flavor, image=self.image, namespace=self.namespace)
        for path in written:
            progress(f"✅ Wrote {path}")
        return written

    def rollback(self, name: str, to: Optional[int] = None, progress: Progress = print) -> str:
        self.unsupported("rollback", "apply the earlier conduit.yaml again (git revert, then `conduit apply`)")

    def log_path(self, name: str, revision: Optional[int] = None) -> Path:
        self.unsupported("logs", f"use `kubectl logs -l {SELECTOR.format(name=name)}{self._scope()}`")

    def status(self, name: str) -> Any:
        self.unsupported("status", f"use `kubectl get inferenceservice {name}{self._scope()}`")

    def statuses(self) -> list[Any]:
        self.unsupported("ls", "use `kubectl get inferenceservices -l app.kubernetes.io/managed-by=conduit -A`")

    def _scope(self) -> str:
        return f" -n {self.namespace}" if self.namespace else ""
