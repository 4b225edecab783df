"""Container images of Bentos (`conduit.image`): builder choice, image references, and, opt-in
(CONDUIT_CONTAINER_TESTS=1, minutes of CPU), the real path: `conduit build --image` of the iris
example with podman, `podman run` on 127.0.0.1, and an authenticated /predict."""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conduit.errors import ConduitError
from conduit.image import find_builder, image_reference

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/acme/iris", "ghcr.io/acme/iris:0123abcd"),
        ("localhost:5000/iris", "localhost:5000/iris:0123abcd"),  # a port is not a tag
        ("ghcr.io/acme/iris:v2", "ghcr.io/acme/iris:v2"),
        ("ghcr.io/acme/iris@sha256:" + "a" * 64, "ghcr.io/acme/iris@sha256:" + "a" * 64),
    ],
)
def test_an_image_without_a_tag_gets_the_bento_version(image: str, expected: str) -> None:
    assert image_reference(image, "iris:0123abcd") == expected


def _only_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, str]) -> None:
    """PATH holds only these executables (shell scripts standing in for builder CLIs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CONDUIT_CONTAINER_BUILDER", raising=False)


def test_no_builder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_on_path(tmp_path, monkeypatch, {})
    with pytest.raises(ConduitError, match=r"no container builder works here \(docker: not installed; podman: not installed; buildah: not installed\)"):
        find_builder()


def test_a_docker_client_without_an_engine_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_on_path(tmp_path, monkeypatch, {
        "docker": 'echo "Cannot connect to the Docker daemon. Is the docker daemon running?" >&2; exit 1',
        "podman": "exit 0",
    })
    assert find_builder() == "podman"


def test_the_named_builder_must_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_on_path(tmp_path, monkeypatch, {"docker": 'echo "Cannot connect to the Docker daemon" >&2; exit 1', "podman": "exit 0"})
    monkeypatch.setenv("CONDUIT_CONTAINER_BUILDER", "docker")
    with pytest.raises(ConduitError, match="docker: Cannot connect to the Docker daemon"):
        find_builder()


def test_an_unknown_builder_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUIT_CONTAINER_BUILDER", "kaniko")
    with pytest.raises(ConduitError, match="kaniko: not one of docker, podman, buildah"):
        find_builder()


# --- opt-in: a real image, built and run with podman -------------------------------------------

container = pytest.mark.skipif(
    os.environ.get("CONDUIT_CONTAINER_TESTS") != "1" or shutil.which("podman") is None,
    reason="builds and runs an OCI image (minutes): set CONDUIT_CONTAINER_TESTS=1, with podman set up",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(base: str, deadline_s: float) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"{base}/readyz did not answer 200 within {deadline_s:g}s")


@pytest.mark.container
@container
def test_the_iris_image_serves_authenticated_predictions(tmp_path: Path) -> None:
    example = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", example, ignore=shutil.ignore_patterns("*.pkl"))
    # Offline, the only base image is the Python 3.11 one `container-setup.sh` makes; any other
    # version would make the image's `uv venv` download a Python.
    manifest = example / "conduit.yaml"
    manifest.write_text(manifest.read_text() + 'python_version: "3.11"\n')
    env = {**os.environ, "CONDUIT_HOME": str(tmp_path / "home"), "CONDUIT_CONTAINER_BUILDER": "podman"}
    subprocess.run([sys.executable, str(example / "train.py")], check=True, env=env, timeout=120)
    image = f"localhost/conduit-test/iris:{secrets.token_hex(4)}"
    conduit = str(Path(sys.executable).parent / "conduit")
    started = time.monotonic()
    built = subprocess.run([conduit, "build", str(example / "conduit.yaml"), "--image", image],
                           env=env, capture_output=True, text=True, timeout=1800)
    print(f"conduit build --image took {time.monotonic() - started:.0f}s")
    assert built.returncode == 0, built.stdout + built.stderr
    assert image in built.stdout
    key = secrets.token_urlsafe(24)
    port = _free_port()
    name = f"conduit-test-{secrets.token_hex(4)}"
    run = ["podman", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:3000",
           "-e", f"CONDUIT_API_KEY_SHA256={hashlib.sha256(key.encode()).hexdigest()}", image]
    try:
        subprocess.run(run, check=True, capture_output=True, text=True, timeout=120)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, 180)
        request = (REPO / "examples" / "iris" / "request.json").read_bytes()
        answer = httpx.post(f"{base}/predict", content=request, headers={"Authorization": key, "Content-Type": "application/json"}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["result"]) == 2 and len(body["prediction_ids"]) == 2
        assert abs(sum(body["result"][0]) - 1.0) < 1e-6  # class probabilities
        wrong = httpx.post(f"{base}/predict", content=request, headers={"Authorization": "wrong-key"}, timeout=30)
        assert wrong.status_code == 401
    finally:
        subprocess.run(["podman", "rm", "-f", name], capture_output=True, timeout=120)
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True, timeout=120)
