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
