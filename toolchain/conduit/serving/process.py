"""How to serve a built bento. The local target and the tests start servers with exactly this."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from conduit.paths import conduit_home

API_KEY_SHA256_ENV = "CONDUIT_API_KEY_SHA256"
# Never handed to a served process: the service only ever sees the key's hash.
PLAIN_KEY_ENV = "CONDUIT_API_KEY"


def bentoml_home() -> str:
    """The BentoML store conduit builds into and serves from: `$CONDUIT_HOME/bentoml`."""
    return str(conduit_home() / "bentoml")


def bento_folder(tag: str, home: str | None = None) -> Path:
    """Where BentoML's store keeps `tag` (name:version), found without importing BentoML:
    `<home>/bentos/<name>/<version>` (`home`: the store's, default `bentoml_home()`)."""
    name, _, version = tag.partition(":")
    return Path(home or bentoml_home()) / "bentos" / name / version


def serve_command(tag: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """`bentoml serve TAG` run by this interpreter, so the served bento sees the same packages."""
    return [sys.executable, "-m", "bentoml", "serve", tag, "--host", host, "--port", str(port)]


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


# BentoML's private API: this module alone knows it. Called in the process about to run
# `bentoml serve` (the supervisor's fork), before BentoML's CLI runs.

METRICS_DIR_ENV = "CONDUIT_METRICS_DIR"


def serve_privately(sockets_folder: Path) -> None:
    """Leave BentoML's server nothing listening but its HTTP port, and its metrics its own."""
    arbiter_on_unix_sockets(sockets_folder)
    metrics_dir = os.environ.get(METRICS_DIR_ENV)
    if metrics_dir:
        count_metrics_in(Path(metrics_dir))


def arbiter_on_unix_sockets(folder: Path) -> None:
    """BentoML's arbiter (circus) takes commands (add, set, signal, quit) on a controller socket
    and publishes events on another, on TCP ports of 127.0.0.1 that any local user can reach:
    put both in `folder` (private to its owner) instead. BentoML imports
    `create_standalone_arbiter` when it serves, so replacing it here is enough."""
    from bentoml._internal.utils import circus

    def create_standalone_arbiter(watchers, *, threaded: bool = False, **kwargs):
        arbiter_class = circus.ThreadedArbiter if threaded else circus.Arbiter
        return arbiter_class(
            watchers,
            endpoint=f"ipc://{folder / 'controller'}",
            pubsub_endpoint=f"ipc://{folder / 'pubsub'}",
            check_delay=kwargs.pop("check_delay", 10),  # BentoML's own default, see its docstring
            **kwargs,
        )

    circus.create_standalone_arbiter = create_standalone_arbiter


def count_metrics_in(folder: Path) -> None:
    """BentoML keeps every server's Prometheus multiprocess files in one folder of its home and
    empties it whenever a server starts: each served revision gets its own `folder` instead
    (BentoML still empties it when that revision's server starts)."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    BentoMLContainer.prometheus_multiproc_dir.set(str(folder))
