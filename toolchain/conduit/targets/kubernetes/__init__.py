"""The `kubernetes` target: a Bento image as a KServe InferenceService, or a plain Deployment.

Two flavours:
- `serverless` (default): KServe `InferenceService` in serverless mode on Knative. `min_replicas: 0`
  is real scale to zero; `cooldown` is how long Knative keeps the last replica after traffic stops.
- `raw`: `Deployment` + `Service` + `HorizontalPodAutoscaler` (autoscaling/v2) for clusters
  without Knative. A HorizontalPodAutoscaler cannot scale to zero, so `min_replicas: 0` is refused.

`render_manifests` is pure (filename -> YAML text). `render_to` writes them for Argo CD or Flux;
`apply` sends them with server-side apply (`kubectl`, field manager `conduit`) and waits. The
package: `values.py` says what each manifest field means in Kubernetes terms, `apply.py` talks to
the cluster through kubectl, `target.py` is this target behind `conduit.targets.Target`.

Namespaces: a manifest's `project` is its namespace (`project: default`, the default, is the
namespace `default`), written into every object's `metadata.namespace`; `--namespace` overrides
it for apply, render and delete. conduit does not create namespaces: one that does not exist is
kubectl's error (`kubectl create namespace <project>` first). `replica_concurrency` is Knative's
soft concurrency target (`scaleTarget`; see `values.concurrency_target`).

The API key: services read `CONDUIT_API_KEY_SHA256` from Secret `<name>-conduit-auth`. When
`CONDUIT_API_KEY` is set at render time, the Secret (holding the sha256 only) is rendered with the
rest; otherwise it is left out and each file's header says how to create it with kubectl.

Cluster features this relies on (not checkable without a cluster): KServe with Knative Serving;
for GPU rows the NVIDIA device plugin and GPU feature discovery (the `nvidia.com/gpu.product`
label), and Knative's `kubernetes.podspec-nodeselector` and `kubernetes.podspec-tolerations`
feature flags enabled (they are off by default in Knative).
"""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Optional

from conduit.errors import UsageError
from conduit.manifest import Manifest
from conduit.manifest.names import DEFAULT_PROJECT
from conduit.targets.kubernetes import values

# Imported here, before `def apply` below: importing the submodule `apply` for the first time
# sets this package's attribute `apply` to that module, and the function must be what stays.
from conduit.targets.kubernetes.apply import Kubectl, apply_and_wait, delete_labelled  # isort: skip

FLAVORS = ("serverless", "raw")
REGISTRY_ENV = "CONDUIT_REGISTRY"
# flavour -> {file suffix: template}; the file name is `<name>-<suffix>`.
_FILES = {
    "serverless": {"inferenceservice.yaml": "inferenceservice.yaml.j2"},
    "raw": {
        "deployment.yaml": "deployment.yaml.j2",
        "service.yaml": "service.yaml.j2",
        "hpa.yaml": "hpa.yaml.j2",
    },
}
SECRET_FILE = "secret.yaml"


def render_manifests(
    manifest: Manifest,
    flavor: str = "serverless",
    image: Optional[str] = None,
    *,
    bento_tag: Optional[str] = None,
    api_key_sha256: Optional[str] = None,
    namespace: Optional[str] = None,
) -> dict[str, str]:
    """Kubernetes manifests for one deployment: `{file name: YAML text}`. Pure.

    `image` defaults to `bento_tag` (the image `bentoml containerize` makes), else the name.
    `api_key_sha256` adds the Secret; without it the Secret is expected to exist already.
    Every object is in `namespace`, default the manifest's project."""
    _check_flavor(manifest, flavor)
    if api_key_sha256 is not None and not _is_sha256_hex(api_key_sha256):
        raise UsageError("api_key_sha256 must be the 64 hex digits of the key's sha256, never the key itself")
    context = _context(manifest, values.image_ref(manifest, image, bento_tag), api_key_sha256)
    context["namespace"] = values.namespace(manifest, namespace)
    files = {f"{manifest.name}-{suffix}": _render(template, context) for suffix, template in _FILES[flavor].items()}
    if api_key_sha256:
        files[f"{manifest.name}-{SECRET_FILE}"] = _render("secret.yaml.j2", context)
    return files


def render_to(
    manifest: Manifest,
    out_dir: Path | str,
    flavor: str = "serverless",
    image: Optional[str] = None,
    namespace: Optional[str] = None,
) -> list[Path]:
    """Write the manifests into `out_dir` (made if missing); the Secret only with CONDUIT_API_KEY set."""
    files = render_manifests(
        manifest,
        flavor,
        image,
        bento_tag=_bento_tag_unless(image, manifest),
        api_key_sha256=api_key_sha256_from_env(),
        namespace=namespace,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in files.items():
        (out / file_name).write_text(text, encoding="utf-8")
        written.append(out / file_name)
    return written


def apply(
    manifest: Manifest,
    namespace: Optional[str] = None,
    context: Optional[str] = None,
    flavor: str = "serverless",
    image: Optional[str] = None,
    timeout_s: int = 600,
) -> str:
    """Server-side apply (field manager `conduit`) into `namespace`, default the manifest's
    project, wait until ready, return the predict URL.

    The image: `image` when given; else, with `CONDUIT_REGISTRY` set, the Bento is built,
    containerized as `$CONDUIT_REGISTRY/<name>:<version>` and pushed first (what CI does); else the
    Bento's own tag `<name>:<version>`, an image the cluster must already have (kind, minikube)."""
    _check_flavor(manifest, flavor)  # before a build and a push that would be for nothing
    if image is None and os.environ.get(REGISTRY_ENV):
        from conduit.image import publish

        image = publish(manifest, os.environ[REGISTRY_ENV])
    key_sha256 = api_key_sha256_from_env()
    where = values.namespace(manifest, namespace)
    files = render_manifests(
        manifest, flavor, image, bento_tag=_bento_tag_unless(image, manifest), api_key_sha256=key_sha256, namespace=where
    )
    kubectl = Kubectl(namespace=where, context=context)
    return apply_and_wait(kubectl, manifest.name, flavor, files, secret_rendered=bool(key_sha256), timeout_s=timeout_s)


def delete(
    name: str, namespace: Optional[str] = None, context: Optional[str] = None, project: str = DEFAULT_PROJECT
) -> None:
    """Remove every object conduit applied for `name` in `namespace`, default the namespace of
    `project` (found by its labels, either flavour). A Secret created by hand carries no conduit
    labels and stays."""
    delete_labelled(Kubectl(namespace=namespace or project, context=context), name)


def api_key_sha256_from_env() -> Optional[str]:
    """The hash of `CONDUIT_API_KEY`, when set: the only form of the key that leaves this process.
    It must pass the same checks as a local deployment's key (`conduit.keys.explicit_key`)."""
    from conduit.keys import explicit_key
    from conduit.serving.auth import key_sha256

    key = explicit_key()  # None when CONDUIT_API_KEY is not set
    return key_sha256(key) if key else None


def _bento_tag_unless(image: Optional[str], manifest: Manifest) -> Optional[str]:
    """A given image names its own version (its tag); without one, the Bento's tag is the image."""
    return None if image else bento_tag_of(manifest)


def bento_tag_of(manifest: Manifest) -> Optional[str]:
    """`<name>:<version>` as `conduit build` tags the Bento (the version is the render's content
    hash, so the artifacts must be there); None where the render step is not installed."""
    try:
        from conduit.render import render
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="conduit-k8s-") as tmp:
        version = render(manifest, Path(tmp)).version
    return f"{manifest.name}:{version}"


def _is_sha256_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _check_flavor(manifest: Manifest, flavor: str) -> None:
    if flavor not in FLAVORS:
        raise UsageError(f"unknown Kubernetes flavour {flavor!r}: use one of {', '.join(FLAVORS)}")
    if flavor == "raw" and manifest.min_replicas == 0:
        raise UsageError(
            f"{manifest.name}: min_replicas 0 (scale to zero) needs Knative; a HorizontalPodAutoscaler "
            "keeps at least one replica. Use the serverless flavour (--flavor serverless, KServe on "
            "Knative), or set min_replicas: 1 for the raw flavour"
        )


def _context(manifest: Manifest, ref: values.ImageRef, api_key_sha256: Optional[str]) -> dict:
    row = values.hardware_spec(manifest)
    return {
        "name": manifest.name,
        "min_replicas": manifest.min_replicas,
        "max_replicas": manifest.max_replicas,
        "labels": values.labels(manifest, ref),
        "selector": values.selector(manifest),
        "annotations": values.tag_annotations(ref),
        "isvc_annotations": {**values.tag_annotations(ref), **values.knative_annotations(manifest)},
        "scale_target": values.concurrency_target(manifest),
        "request_logger": values.request_logger(manifest),
        "scheduling": values.scheduling(row),
        "container": values.container(manifest, ref, row),
        "port": values.BENTO_PORT,
        "cpu_utilization": values.HPA_CPU_UTILIZATION,
        "scale_down_window": values.scale_down_window(manifest),
        "secret_name": values.secret_name(manifest),
        "secret_key": values.SECRET_KEY,
        "secret_rendered": bool(api_key_sha256),
        "key_sha256": api_key_sha256,
    }


def _render(template: str, context: dict) -> str:
    return _environment().get_template(f"kubernetes/{template}").render(**context).strip() + "\n"


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    from conduit.paths import templates_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["to_yaml"] = to_yaml
    return env


def to_yaml(value) -> str:
    """A value as block YAML without a trailing newline (templates indent it in place)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # keep the order the values were written in
    stream = io.StringIO()
    yaml.dump(value, stream)
    return stream.getvalue().rstrip("\n")
