"""The fast path: a raw ASGI layer in front of the BentoML app that answers POST /predict itself.

BentoML's IO layer costs about 2 ms of CPU per request (pydantic models, serde, context); this
path costs a header scan, one orjson parse and one orjson dump. Everything else (health, metrics,
docs, the declared @bentoml.api route, the lifespan) passes through to BentoML untouched.

Where it sits is set by CONDUIT_FAST_PATH:

- "1" (default), "front": outside BentoML's whole ASGI stack (`ConduitService.to_asgi` wraps the
  app). /predict then skips the wrappers BentoML puts around every request and response (server
  errors, traffic metrics, OpenTelemetry, access log, timeout task, context): iris in the bench
  went from 0.82 to 0.35 ms of CPU per request. What those gave /predict conduit does itself:
  errors in the contract's shape, a per-worker concurrency cap, a timeout for model calls off the
  loop, and request metrics (`conduit.serving.metrics`). BentoML's access log skips /predict.
- "inner": as a user middleware (`Service.add_asgi_middleware`), inside that stack.
- "0": no fast path; /predict goes through the declared BentoML route (same contract).
"""
from __future__ import annotations

import os

from conduit.serving.handler import PredictHandler

JSON_HEADERS = [(b"content-type", b"application/json")]
FAST_PATH_ENV = "CONDUIT_FAST_PATH"


def fast_path_mode() -> str:
    """"front", "inner" or "off"."""
    value = os.environ.get(FAST_PATH_ENV, "1").strip().lower()
    if value in ("0", "off", "false", "no"):
        return "off"
    return "inner" if value == "inner" else "front"


def fast_path_enabled() -> bool:
    return fast_path_mode() != "off"


class PredictMiddleware:
    def __init__(self, app, handler: PredictHandler, path: str = "/predict") -> None:
        self.app = app
        self.handler = handler
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status, body = await self.handler.respond(scope["headers"], receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class DocsAlias:
    """GET /docs: the contract promises docs there; BentoML's Swagger UI lives at / (spec at /docs.json)."""

    def __init__(self, app, path: str = "/docs", target: bytes = b"/") -> None:
        self.app = app
        self.paths = {path, path + "/"}
        self.target = target

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 307, "headers": [(b"location", self.target), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
