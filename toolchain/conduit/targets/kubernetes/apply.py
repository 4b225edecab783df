"""Sending rendered manifests to a cluster with `kubectl`, and waiting until they serve.

kubectl rather than a client library: it already speaks every kubeconfig auth mode (tokens,
certificates, exec plugins for EKS/GKE/AKS) and contexts. Apply is server-side with field manager
`conduit`, forcing conflicts: the manifest in git is the source of truth for the fields conduit
sets, and fields others set (an HPA's replica count, annotations added by operators) are left alone.
Readiness is read from the objects themselves (`kubectl get -o json`) by the pure functions below.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Optional

from conduit.errors import DeployError
from conduit.targets.kubernetes.values import MANAGED_BY, SECRET_KEY

FIELD_MANAGER = "conduit"
POLL_S = 2.0
KUBECTL_TIMEOUT_S = 120
# the object whose readiness says a flavour is serving
READY_KIND = {"serverless": "inferenceservice", "raw": "deployment"}
# everything either flavour applies, fully qualified so a same-named CRD elsewhere never matches
APPLIED_KINDS = (
    "inferenceservices.serving.kserve.io",
    "horizontalpodautoscalers.autoscaling",
    "services",
    "deployments.apps",
    "secrets",
)


class KubectlError(DeployError):
    type = "kubernetes_error"


@dataclass(frozen=True)
class Kubectl:
    namespace: Optional[str] = None
    context: Optional[str] = None
    executable: str = "kubectl"

    def command(self, *args: str) -> list[str]:
        found = shutil.which(self.executable)
        if found is None:
            raise KubectlError(
                "kubectl not found on PATH: install it, or write the manifests with "
                "`conduit render --target kubernetes --out DIR` and apply them with your own tooling"
            )
        scope = [f"--context={self.context}"] * bool(self.context) + [f"--namespace={self.namespace}"] * bool(self.namespace)
        return [found, *scope, *args]

    def run(self, *args: str, stdin: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(
                self.command(*args), input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise KubectlError(f"kubectl {args[0]} got no answer in {KUBECTL_TIMEOUT_S}s: is the cluster reachable?") from None
        if check and done.returncode != 0:
            raise KubectlError(f"kubectl {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def get(self, kind: str, name: str) -> Optional[dict]:
        """The object as the API server has it, or None when there is none."""
        done = self.run("get", kind, name, "--output=json", "--ignore-not-found", check=True)
        return json.loads(done.stdout) if done.stdout.strip() else None


def apply_and_wait(
    kubectl: Kubectl,
    name: str,
    flavor: str,
    files: dict[str, str],
    secret_rendered: bool,
    timeout_s: float = 600,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Apply `files` in one request, wait for the deployment to be ready, return its predict URL."""
    if not secret_rendered:
        require_secret(kubectl, f"{name}-conduit-auth")
    kubectl.run(
        "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "--filename=-",
        stdin=join_documents(files),
    )
    obj = wait_ready(kubectl, READY_KIND[flavor], name, timeout_s, sleep)
    return predict_url(obj, flavor)


def delete_labelled(kubectl: Kubectl, name: str) -> None:
    """Delete what conduit applied for `name`, kind by kind; a kind this cluster lacks (no KServe
    on a raw cluster) is skipped."""
    selector = f"app.kubernetes.io/name={name},app.kubernetes.io/managed-by={MANAGED_BY}"
    for kind in APPLIED_KINDS:
        done = kubectl.run("delete", kind, f"--selector={selector}", "--ignore-not-found", "--wait=false", check=False)
        if done.returncode != 0 and "doesn't have a resource type" not in done.stderr:
            raise KubectlError(f"kubectl delete {kind} failed: {done.stderr.strip()}")


def join_documents(files: dict[str, str]) -> str:
    """One YAML stream; the Secret first so the pods never start without their key hash."""
    ordered = sorted(files.items(), key=lambda item: not item[0].endswith("-secret.yaml"))
    return "\n---\n".join(text for _, text in ordered)


def require_secret(kubectl: Kubectl, secret: str) -> None:
    if kubectl.get("secret", secret) is None:
        raise KubectlError(
            f"Secret {secret} is missing, and the service cannot check API keys without it. Set "
            f"CONDUIT_API_KEY (conduit then applies a Secret holding its sha256), or create it: kubectl "
            f"create secret generic {secret} --from-literal={SECRET_KEY}=<sha256 hex of the key>"
        )


def wait_ready(kubectl: Kubectl, kind: str, name: str, timeout_s: float, sleep: Callable[[float], None]) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        obj = kubectl.get(kind, name)
        ready, why = readiness(kind, obj)
        if ready and obj is not None:  # readiness is never True for a missing object
            return obj
        if time.monotonic() >= deadline:
            raise KubectlError(f"{kind}/{name} was not ready after {timeout_s:g}s: {why}")
        sleep(POLL_S)


def readiness(kind: str, obj: Optional[dict]) -> tuple[bool, str]:
    """(ready, why not) for an object as the API server returns it."""
    if obj is None:
        return False, "it does not exist"
    if kind == "inferenceservice":
        return _condition_ready(obj)
    return _rollout_done(obj)


def _condition_ready(obj: dict) -> tuple[bool, str]:
    conditions = obj.get("status", {}).get("conditions", [])
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:
        return False, "no Ready condition yet"
    if ready.get("status") != "True":
        return False, ready.get("message") or ready.get("reason") or "Ready is False"
    return bool(obj["status"].get("url")), "ready, but no URL yet"


def _rollout_done(obj: dict) -> tuple[bool, str]:
    """The same test `kubectl rollout status` makes for a Deployment."""
    status, spec = obj.get("status", {}), obj.get("spec", {})
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 1):
        return False, "the controller has not seen this revision yet"
    if status.get("updatedReplicas", 0) < wanted:
        return False, f"{status.get('updatedReplicas', 0)} of {wanted} replicas updated"
    if status.get("replicas", 0) > status.get("updatedReplicas", 0):
        return False, "old replicas are still terminating"
    if status.get("availableReplicas", 0) < status.get("updatedReplicas", 0):
        return False, f"{status.get('availableReplicas', 0)} of {wanted} updated replicas available"
    return True, ""


def predict_url(obj: dict, flavor: str) -> str:
    """Serverless: the URL KServe publishes. Raw: the Service's in-cluster address (expose it
    with an Ingress or Gateway of your own to reach it from outside)."""
    if flavor == "serverless":
        return obj["status"]["url"].rstrip("/") + "/predict"
    meta = obj["metadata"]
    return f"http://{meta['name']}.{meta.get('namespace', 'default')}.svc.cluster.local/predict"
