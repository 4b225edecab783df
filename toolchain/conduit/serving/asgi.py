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

import asyncio
import os

from conduit.errors import PayloadTooLarge
from conduit.serving.handler import PredictHandler

JSON_HEADERS = [(b"content-type", b"application/json")]
FAST_PATH_ENV = "CONDUIT_FAST_PATH"
# How much of an unread body an early answer waits for (nginx's lingering close, smaller).
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_MAX_S = 10.0
DRAIN_IDLE_S = 2.0


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
        request_body = RequestBody(receive)
        status, body = await self.handler.respond(scope["headers"], request_body.receive)
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        if request_body.complete or request_body.awaits_continue(scope["headers"]):
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await answer_early(send, status, headers, body, request_body)


async def answer_early(send, status: int, headers: list, body: bytes, request_body: RequestBody) -> None:
    """A response sent before the request's body was read (401, 413, 503). Closing a socket whose
    receive buffer still holds unread bytes makes the kernel send a reset, which destroys the
    response on its way to the client; uvicorn closes at once after a `Connection: close` request.
    So: send the whole response, then read and drop the rest of the body (bounded), then finish."""
    if status == PayloadTooLarge.http_status:
        headers.append((b"connection", b"close"))  # the rest of a too-large body is not worth a keep-alive
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await request_body.drain()
    await send({"type": "http.response.body", "body": b""})


class RequestBody:
    """The request's ASGI receive, noting whether the whole body has arrived."""

    def __init__(self, receive) -> None:
        self._receive = receive
        self.complete = False
        self.started = False

    async def receive(self) -> dict:
        message = await self._receive()
        self.started = True
        self.complete = message["type"] == "http.disconnect" or not message.get("more_body", False)
        return message

    def awaits_continue(self, headers) -> bool:
        """A client that sent `Expect: 100-continue` and got no 100 sends no body: nothing to drain."""
        return not self.started and any(name == b"expect" and value.lower() == b"100-continue" for name, value in headers)

    async def drain(self, limit: int = DRAIN_MAX_BYTES, seconds: float = DRAIN_MAX_S, idle: float = DRAIN_IDLE_S) -> None:
        """Read and drop the body until it ends, the client goes quiet for `idle` seconds, or
        `limit` bytes or `seconds` have gone by (then the client has had time to read the answer)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        drained = 0
        while not self.complete and drained <= limit and loop.time() < deadline:
            try:
                message = await asyncio.wait_for(self.receive(), min(idle, deadline - loop.time()))
            except asyncio.TimeoutError:
                return
            drained += len(message.get("body", b""))


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


class OnShutdown:
    """Calls `callback` when the server tells the app it is shutting down (ASGI lifespan), before
    the app hears it: a forked worker ends with os._exit, which runs no atexit handler."""

    def __init__(self, app, callback) -> None:
        self.app = app
        self.callback = callback

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched() -> dict:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.callback()
            return message

        await self.app(scope, watched, send)
