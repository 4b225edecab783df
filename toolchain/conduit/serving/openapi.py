"""The OpenAPI description of POST /predict as conduit serves it.

The declared `@bentoml.api` takes the raw body (so it can follow the same contract as the fast
path), which BentoML would document as an opaque binary. This replaces that operation with the
real contract: the three request shapes, the 200 envelope and the JSON errors.
"""
from __future__ import annotations

from typing import Any

ERROR_STATUSES = {
    "400": "Malformed body",
    "401": "Missing or wrong API key",
    "413": "Body too large",
    "422": "Input the model rejects (wrong shape or dtype)",
    "500": "A bug in conduit",
    "503": "Overloaded or starting",
    "504": "The model did not answer within the deployment's timeout",
}

DATA = {"type": "array", "items": {}, "minItems": 1, "description": "Data points, e.g. [[5.1, 3.5, 1.4, 0.2]]"}
PARAMETERS = {"type": "object", "additionalProperties": True, "description": "Passed to the model call"}
REQUEST = {
    "oneOf": [
        DATA,
        {
            "type": "object",
            "required": ["data"],
            "additionalProperties": False,
            "properties": {"data": DATA, "parameters": PARAMETERS},
        },
    ]
}
MULTIPART = {
    "type": "object",
    "properties": {
        "data": {
            "type": "string",
            "description": "JSON text: an array of data points, or {data, parameters}. Optional with files: "
            "the first pre hook then gets data=None and returns the data points",
        },
        "parameters": {"type": "string", "description": "JSON text of an object (optional)"},
    },
    "additionalProperties": {"type": "string", "format": "binary", "description": "Files for pre hooks"},
}
RESPONSE = {
    "type": "object",
    "required": ["result", "run_id", "run_time_ms", "prediction_ids"],
    "properties": {
        "result": {"type": "array", "items": {}},
        "run_id": {"type": "string", "format": "uuid"},
        "run_time_ms": {"type": "number", "description": "Model time only"},
        "prediction_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
    },
}
ERROR = {
    "type": "object",
    "required": ["error", "run_id"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
        "run_id": {"type": "string", "format": "uuid"},
    },
}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def predict_operation(summary: str) -> dict[str, Any]:
    responses = {"200": {"description": "Predictions", "content": _json(RESPONSE)}}
    responses.update({code: {"description": text, "content": _json(ERROR)} for code, text in ERROR_STATUSES.items()})
    return {
        "summary": summary,
        "operationId": "predict",
        "tags": ["Service APIs"],
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": True,
                "description": "The API key: `<key>` or `Bearer <key>`",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {**_json(REQUEST), "multipart/form-data": {"schema": MULTIPART}},
        },
        "responses": responses,
    }


def with_predict_operation(spec: Any, path: str, summary: str) -> Any:
    """BentoML's OpenAPISpecification with `path`'s POST described as conduit serves it.
    (BentoML's PathItem takes a plain dict for an operation, which keeps this independent of its
    Operation class.)"""
    import attr

    paths = dict(spec.paths)
    item = paths.get(path)
    operation = predict_operation(summary)
    paths[path] = attr.evolve(item, post=operation) if item is not None else {"post": operation}
    return attr.evolve(spec, paths=paths)
