"""One predict request -> (status, JSON body). Shared by the raw-ASGI fast path and the declared
`@bentoml.api` route, so both answer with the same contract.

Order matters: the key is checked before the body is read (an unauthenticated caller cannot make
the server buffer megabytes), and the size cap is enforced while reading, not after.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

from conduit.errors import BadRequest, ConduitError, Overloaded, PayloadTooLarge
from conduit.runtimes.uploads import UploadedFile
from conduit.serving.auth import KeyCheck
from conduit.serving.contract import (
    PredictRequest,
    error_body,
    new_run_id,
    parse_form_fields,
    parse_json,
    prediction_ids,
    success_body,
)
from conduit.serving.prediction_log import Exchange

logger = logging.getLogger("conduit.serving")

Receive = Callable[[], Awaitable[dict]]
Headers = Iterable[tuple[bytes, bytes]]  # ASGI: lower-cased names

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 256


@dataclass
class Limits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY  # per worker process


def header_values(headers: Headers, *names: bytes) -> list[Optional[bytes]]:
    """The values of `names` (lower case) in one pass over the headers; None when absent."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in names:
            found[name] = value
    return [found.get(name) for name in names]


async def read_body(receive: Receive, declared_length: Optional[bytes], limit: int) -> bytes:
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise PayloadTooLarge(f"body of {int(declared_length)} bytes is over the {limit} byte limit")
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit} byte limit")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes) -> Receive:
    """An ASGI receive that hands back a body already read (the @bentoml.api route gets bytes)."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def parse_multipart(headers: list, body: bytes, limit: int) -> PredictRequest:
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException
    from starlette.requests import Request

    request = Request({"type": "http", "method": "POST", "headers": headers}, replay(body))
    try:
        form = await request.form(max_part_size=limit)
    except MultiPartException as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    texts: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for name, value in form.multi_items():
        if name in texts or name in files:
            raise BadRequest(f"multipart field {name!r} appears twice: send each field and file once, under its own name")
        if isinstance(value, UploadFile):
            files[name] = UploadedFile(await value.read(), value.filename or name, value.content_type)
        else:
            texts[name] = value
    return parse_form_fields(texts.get("data"), texts.get("parameters"), files)


def log_failure(run_id: str, exc: BaseException) -> None:
    """The revision's log (`conduit logs`) gets the run_id and traceback; the caller gets neither
    the traceback nor anything from the request's headers (the key stays out of logs)."""
    # BentoML's logging set-up disables every logger made before it ran, and a forked worker
    # imported this module before that: enable this one again, or the failure would go nowhere.
    logger.disabled = False
    logger.error("predict failed (run_id %s): %s: %s", run_id, type(exc).__name__, exc, exc_info=exc)
    # Once more after the traceback, which can be longer than `conduit logs` shows by default.
    logger.error("predict failed (run_id %s): the traceback is above", run_id)


class PredictHandler:
    def __init__(self, key_check: KeyCheck, limits: Limits, predictor: Any = None, metrics: Any = None) -> None:
        self.key_check = key_check
        self.limits = limits
        self.predictor = predictor  # set once the worker has loaded the Flow
        self.metrics = metrics  # conduit.serving.metrics.PredictMetrics, or None
        self.prediction_log: Any = None  # conduit.serving.prediction_log.PredictionLog, or None
        self.in_flight = 0

    async def respond(self, headers: Headers, receive: Receive) -> tuple[int, bytes]:
        started = time.perf_counter()
        exchange = Exchange(new_run_id(), time.time())
        status, body = await self._respond(headers, receive, exchange)
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.record(status, elapsed)
        if self.prediction_log is not None:
            self.prediction_log.record(exchange, status, elapsed)
        return status, body

    async def _respond(self, headers: Headers, receive: Receive, exchange: Exchange) -> tuple[int, bytes]:
        run_id = exchange.run_id
        try:
            return 200, await self._predict(list(headers), receive, exchange)
        except ConduitError as exc:
            if exc.http_status >= 500 and not isinstance(exc, Overloaded):  # a 503 is back-pressure, not a failure
                log_failure(run_id, exc)
            return exc.http_status, self._error(exc, exchange)
        except Exception as exc:  # noqa: BLE001 a bug in conduit or in the model code: say so, keep serving
            log_failure(run_id, exc)
            error = ConduitError(f"internal error: {type(exc).__name__}: {exc}")
            return 500, self._error(error, exchange)

    @staticmethod
    def _error(error: ConduitError, exchange: Exchange) -> bytes:
        exchange.error = error.to_json()
        return error_body(error, exchange.run_id)

    async def _predict(self, headers: list, receive: Receive, exchange: Exchange) -> bytes:
        authorization, content_type, content_length = header_values(
            headers, b"authorization", b"content-type", b"content-length"
        )
        self.key_check.verify(authorization)
        if self.predictor is None:
            raise Overloaded("the model is still loading; retry shortly")
        if self.in_flight >= self.limits.max_concurrency:
            raise Overloaded(f"over {self.limits.max_concurrency} requests in flight; retry shortly")
        self.in_flight += 1
        try:
            request = await self._read(headers, receive, content_type, content_length)
            exchange.data = request.data
            result, run_time_ms = await self._run(request, exchange)
        finally:
            self.in_flight -= 1
        exchange.result, exchange.run_time_ms, exchange.prediction_ids = result, run_time_ms, prediction_ids(len(result))
        return success_body(result, exchange.run_id, run_time_ms, exchange.prediction_ids)

    async def _run(self, request: PredictRequest, exchange: Exchange) -> tuple[list, float]:
        """The predictor's answer; with a prediction log, the pre hook's rows go to the record."""
        if self.prediction_log is None:
            return await self.predictor.predict(request)
        hooked: list = []
        answer = await self.predictor.predict(request, hooked)
        exchange.inputs = hooked[0] if hooked else None
        return answer

    async def _read(self, headers: list, receive: Receive, content_type: Optional[bytes], length: Optional[bytes]) -> PredictRequest:
        body = await read_body(receive, length, self.limits.max_body_bytes)
        if content_type is not None and content_type.startswith(b"multipart/form-data"):
            return await parse_multipart(headers, body, self.limits.max_body_bytes)
        return parse_json(body)
