"""The predict contract as pure functions: request documents in, response bodies out.

Request (POST /predict): a bare JSON array of data points, or `{"data": [...], "parameters": {...}}`,
or multipart/form-data whose optional `data` field holds either of those as JSON text and whose
file fields reach `pre` hooks (conduit.runtimes.hooks says how; a request may be files only).
Response 200: `{"result", "run_id", "run_time_ms", "prediction_ids"}`; errors:
`{"error": {"type", "message"}, "run_id"}` with the status carried by the ConduitError.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import orjson

from conduit.errors import BadRequest, ConduitError
from conduit.runtimes.uploads import UploadedFile

REQUEST_KEYS = frozenset({"data", "parameters"})
DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


@dataclass
class PredictRequest:
    data: Optional[list]  # None: a multipart request with files only
    parameters: Optional[dict] = None
    files: dict[str, UploadedFile] = field(default_factory=dict)


def parse_json(body: bytes) -> PredictRequest:
    """A JSON request body -> PredictRequest; anything malformed is a BadRequest (400)."""
    if not body:
        raise BadRequest("empty body: send a JSON array of data points, e.g. [[1, 2, 3]]")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    return from_document(document)


def from_document(document: Any) -> PredictRequest:
    if isinstance(document, list):
        return PredictRequest(_data_points(document))
    if not isinstance(document, dict):
        raise BadRequest('body must be a JSON array of data points or {"data": [...], "parameters": {...}}')
    unknown = sorted(set(document) - REQUEST_KEYS)
    if unknown:
        raise BadRequest(f"unknown key(s) {', '.join(map(repr, unknown))}: expected 'data' and optional 'parameters'")
    if "data" not in document:
        raise BadRequest("missing 'data': a JSON array of data points")
    return PredictRequest(_data_points(document["data"]), _parameters(document.get("parameters")))


def parse_form_fields(
    data_text: Optional[str], parameters_text: Optional[str], files: dict[str, UploadedFile]
) -> PredictRequest:
    """A multipart request: optional `data` (JSON text: an array or {data, parameters}), optional
    `parameters` (JSON text), and files for the `pre` hooks. Without `data` the files are the
    request: the first stage's `pre` hook gets data=None and returns the data points."""
    if data_text is None and not files:
        raise BadRequest("multipart body has neither a 'data' field (JSON text of the data points) nor files")
    request = parse_json(data_text.encode("utf-8")) if data_text is not None else PredictRequest(None)
    if parameters_text is not None:
        request.parameters = _parameters(_loads_field("parameters", parameters_text))
    request.files = files
    return request


def _loads_field(name: str, text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"form field {name!r} is not valid JSON: {exc}") from None


def _data_points(data: Any) -> list:
    if not isinstance(data, list):
        raise BadRequest(f"'data' must be a JSON array of data points, got {type(data).__name__}")
    if not data:
        raise BadRequest("'data' is empty: send at least one data point")
    return data


def _parameters(parameters: Any) -> Optional[dict]:
    if parameters is None or isinstance(parameters, dict):
        return parameters
    raise BadRequest(f"'parameters' must be a JSON object, got {type(parameters).__name__}")


def new_run_id() -> str:
    return time_ordered_ids(1)[0]


def prediction_ids(count: int) -> list[str]:
    return time_ordered_ids(count)


def time_ordered_ids(count: int) -> list[str]:
    """`count` version 7 UUIDs (RFC 9562): the unix time in milliseconds, then 74 random bits,
    from one urandom call. Ordered by time, they land at the end of the prediction log's indexes
    (random version 4 ids cost ten times as much to index there), and say when they were made."""
    head = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76
    raw = os.urandom(10 * count)
    ids = []
    for i in range(count):
        random_bits = int.from_bytes(raw[i * 10 : i * 10 + 10], "big")
        value = head | (random_bits >> 68) << 64 | 0b10 << 62 | (random_bits & (1 << 62) - 1)
        ids.append(str(uuid.UUID(int=value)))
    return ids


def success_body(result: list, run_id: str, run_time_ms: float, ids: Optional[list[str]] = None) -> bytes:
    """The 200 envelope: one prediction id per item of `result` (one per data point); `ids`
    when the caller has made them already (to record them in the prediction log)."""
    return orjson.dumps(
        {
            "result": result,
            "run_id": run_id,
            "run_time_ms": round(run_time_ms, 3),
            "prediction_ids": prediction_ids(len(result)) if ids is None else ids,
        },
        option=DUMP_OPTIONS,
    )


def error_body(error: ConduitError, run_id: str) -> bytes:
    return orjson.dumps({"error": error.to_json(), "run_id": run_id})
