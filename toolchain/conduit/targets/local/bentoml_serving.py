"""Everything conduit knows about BentoML's CLI, store layout and private API, in one place.

Serving a built Bento is BentoML's job; conduit only decides how its processes start. What that
needs from BentoML, and nothing else, is here:
- its store: `$CONDUIT_HOME/bentoml`, a Bento at `bentos/<name>/<version>` with its code in `src/`
  (and BentoML's private `BentoStore` class, which `conduit build` builds into);
- its CLI: `bentoml serve TAG` (the bench's bare peer and the tests' servers);
- its worker: `python -m _bentoml_impl.worker.service <bento> --fd N --service-name S
  --worker-id W` in the Bento's `src/`, which is what `bentoml serve`'s arbiter runs for each
  worker (`_bentoml_impl/server/serving.py::serve_http`, BentoML 1.4). A replica runs exactly
  that, without the arbiter: conduit's gateway watches replicas itself;
- what that worker is told by the environment: PROMETHEUS_MULTIPROC_DIR (its metrics folder)
  and BENTOML_RUNNER_MAP (where each service of the Bento answers);

Importing this module imports no BentoML (the gateway never does).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from conduit.hardware import worker_layout
from conduit.paths import conduit_home
from conduit.serving.auth import API_KEY_SHA256_ENV
from conduit.serving.bento import read_lock

__all__ = [
    "API_KEY_SHA256_ENV",
    "METRICS_DIR_ENV",
    "PLAIN_KEY_ENV",
    "WorkerLayout",
    "bento_folder",
    "bentoml_home",
    "serve_command",
    "serve_env",
    "worker_layout_of",
]

# Never handed to a served process: the service only ever sees the key's hash.
PLAIN_KEY_ENV = "CONDUIT_API_KEY"
METRICS_DIR_ENV = "CONDUIT_METRICS_DIR"  # conduit's name for a revision's metrics folder
PROMETHEUS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # BentoML's worker counts its metrics there
RUNNER_MAP_ENV = "BENTOML_RUNNER_MAP"
WORKER_MODULE = "_bentoml_impl.worker.service"
# What a BentoML worker imports before its service and model (0.7 s here): a zygote imports them once.
WORKER_IMPORTS = (
    WORKER_MODULE,
    "_bentoml_impl.loader",
    "_bentoml_impl.server.app",
    "bentoml._internal.service.loader",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
)
# Picks its multi-process mode from PROMETHEUS_MULTIPROC_DIR when imported: a process that
# imported it before knowing a replica's folder cannot be forked into that replica's worker.
IMPORT_TIME_ENV_READERS = ("prometheus_client",)
BACKLOG = 2048  # BentoML's default (api_server.backlog)


def bentoml_home() -> str:
    """The BentoML store conduit builds into and serves from: `$CONDUIT_HOME/bentoml`."""
    return str(conduit_home() / "bentoml")


def bento_store():
    """BentoML's store under CONDUIT_HOME, whatever BENTOML_HOME this process started with."""
    os.environ["BENTOML_HOME"] = bentoml_home()  # for anything BentoML resolves from its config
    from bentoml._internal.bento import BentoStore

    path = Path(bentoml_home()) / "bentos"
    path.mkdir(parents=True, exist_ok=True)
    return BentoStore(str(path))


def bento_folder(tag: str, home: str | None = None) -> Path:
    """Where BentoML's store keeps `tag` (name:version), found without importing BentoML:
    `<home>/bentos/<name>/<version>` (`home`: the store's, default `bentoml_home()`)."""
    name, _, version = tag.partition(":")
    return Path(home or bentoml_home()) / "bentos" / name / version


def serve_command(tag: str, port: int, host: str = "127.0.0.1", python: str = sys.executable) -> list[str]:
    """`bentoml serve TAG` run by `python` (default this one), so the served bento sees its packages."""
    return [python, "-m", "bentoml", "serve", tag, "--host", host, "--port", str(port)]


def serve_env(key_sha256: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The full environment for a served bento: `base` (default os.environ) without the plain
    API key, plus the key's hash, the BentoML store, and offline Hugging Face."""
    env = dict(os.environ if base is None else base)
    env.pop(PLAIN_KEY_ENV, None)
    env.update(
        {
            API_KEY_SHA256_ENV: key_sha256,
            "BENTOML_HOME": bentoml_home(),
            "BENTOML_DO_NOT_TRACK": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
    )
    return env


@dataclass(frozen=True)
class WorkerLayout:
    """How a conduit Bento's workers start, read from its lock file (no BentoML import)."""

    tag: str  # what the worker loads, from the store in BENTOML_HOME, as under `bentoml serve`
    bento: Path  # the Bento's folder in that store (bento.yaml, src/)
    service_name: str  # conduit names the service after the deployment
    workers: int  # what the generated service.py declares (`workers=`), all on one socket

    @property
    def src(self) -> Path:
        """The worker's working folder: the Bento's code (service.py, conduit's runtime)."""
        return self.bento / "src"

    def worker_argv(self, fd: str, worker_id: str) -> list[str]:
        """The worker's arguments after the interpreter, as `bentoml serve`'s arbiter gives them."""
        return [
            "-m", WORKER_MODULE, self.tag, "--fd", fd, "--service-name", self.service_name,
            "--backlog", str(BACKLOG), "--worker-id", worker_id,
        ]

    def worker_env(self, metrics_dir: str | None, port: int) -> dict[str, str]:
        """What BentoML's arbiter would add to each worker's environment."""
        env = {RUNNER_MAP_ENV: json.dumps({self.service_name: f"http://127.0.0.1:{port}"})}
        if metrics_dir:
            env[PROMETHEUS_DIR_ENV] = metrics_dir
        return env


def worker_layout_of(tag: str) -> WorkerLayout:
    """The layout of the built Bento `tag`; OSError/ValueError when it is not a conduit Bento."""
    bento = bento_folder(tag)
    lock = read_lock(bento / "src")
    manifest = lock["manifest"]
    workers, _threads = worker_layout(lock["hardware"], manifest["cpu"])
    return WorkerLayout(tag, bento, manifest["name"], workers)
