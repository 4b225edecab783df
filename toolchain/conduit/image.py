"""A built Bento -> an OCI image, with whichever container builder this machine has.

`bentoml containerize` does the build; conduit only picks the backend: the first of docker,
podman and buildah that actually works here (docker needs a running engine, so `docker info`
must succeed, not just the client exist). `CONDUIT_CONTAINER_BUILDER` names one explicitly.
An image reference without a tag gets the Bento's version, so every build has its own tag and a
Kubernetes rollout always pulls what was built.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any, Callable, Optional

from conduit.errors import DeployError
from conduit.targets.local.bentoml_serving import bentoml_home

BUILDERS = ("docker", "podman", "buildah")
BUILDER_ENV = "CONDUIT_CONTAINER_BUILDER"
REGISTRY_ENV = "CONDUIT_REGISTRY"
PROBE_TIMEOUT_S = 30
BUILD_TIMEOUT_S = 3600


class ImageError(DeployError):
    type = "image_error"


def containerize(tag: str, image: str, builder: Optional[str] = None) -> str:
    """Build the image of Bento `tag` as `image` (a tag is added when it has none); return the
    full reference."""
    backend = builder or find_builder()
    reference = image_reference(image, tag)
    command = [sys.executable, "-m", "bentoml", "containerize", tag, "-t", reference, "--backend", backend]
    _run(command, f"bentoml containerize with {backend}", BUILD_TIMEOUT_S)
    return reference


def push(reference: str, builder: Optional[str] = None) -> str:
    """Push an image with the builder that made it (credentials: that builder's own login)."""
    backend = builder or find_builder()
    _run([backend, "push", reference], f"{backend} push", BUILD_TIMEOUT_S)
    return reference


def publish(manifest: Any, registry: str, progress: Callable[[str], None] = print) -> str:
    """Build the Bento, containerize it as `<registry>/<name>:<version>`, push it; return the
    reference. What the kubernetes target runs when no image is given but a registry is."""
    from conduit.build import build

    builder = find_builder()  # before the build: no builder should cost no build time
    result = build(manifest, progress=progress)
    reference = containerize(result.tag, f"{registry.rstrip('/')}/{manifest.name}", builder)
    progress(f"✅ Image {reference}")
    push(reference, builder)
    progress(f"⬆️  Pushed {reference}")
    return reference


def image_reference(image: str, bento_tag: str) -> str:
    """`registry/name` -> `registry/name:<bento version>`; a given tag or digest is kept. (A ':'
    before the last '/' is a registry port, not a tag.)"""
    last = image.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        return image
    return f"{image}:{bento_tag.split(':', 1)[-1]}"


def find_builder() -> str:
    """The first working builder, or `CONDUIT_CONTAINER_BUILDER` when it is set and works."""
    wanted = os.environ.get(BUILDER_ENV)
    candidates = (wanted,) if wanted else BUILDERS
    problems = []
    for name in candidates:
        why = builder_problem(name)
        if why is None:
            return name
        problems.append(f"{name}: {why}")
    raise ImageError(
        "no container builder works here (" + "; ".join(problems) + "). Install and start one of "
        "docker, podman or buildah, or build the image elsewhere and pass it with --image"
    )


def builder_problem(name: str) -> Optional[str]:
    """Why `name` cannot build images here, or None when it can."""
    if name not in BUILDERS:
        return f"not one of {', '.join(BUILDERS)}"
    if shutil.which(name) is None:
        return "not installed"
    probe = [name, "info"] if name != "buildah" else [name, "version"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(probe)}` did not answer in {PROBE_TIMEOUT_S}s"
    if done.returncode != 0:
        return _last_line(done.stderr or done.stdout) or f"`{' '.join(probe)}` failed"
    return None


def _run(command: list[str], what: str, timeout_s: int) -> None:
    env = {**os.environ, "BENTOML_HOME": bentoml_home(), "BENTOML_DO_NOT_TRACK": "True"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"{what} did not finish in {timeout_s}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise ImageError(f"{what} failed:\n{tail}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
