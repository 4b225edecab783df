"""Prototype: the fastest /predict found that BentoML still serves (bench only, not conduit).

The hand-written peer's model, with an ASGI middleware (`Service.add_asgi_middleware`) that answers
POST /predict itself: read the body, one orjson parse, the model call inline on the event loop
(iris takes ~0.1 ms: a thread hop costs more), one orjson dump. Health, metrics and docs still go
through BentoML. Serve bare: `bentoml serve fast_service:Fast --working-dir bench/prototypes`
with PEER_MODEL_PATH set; PROTO_WORKERS picks the worker count.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import bentoml
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))
from bentoml_service import load_predict  # noqa: E402

WORKERS = int(os.environ.get("PROTO_WORKERS", "1"))
JSON = [(b"content-type", b"application/json")]
predict_rows = None  # loaded per worker, in the service constructor


class FastPredict:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or predict_rows is None:
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = orjson.dumps(predict_rows(orjson.loads(body)["data"]))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*JSON, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


@bentoml.service(workers=WORKERS)
class Fast:
    def __init__(self) -> None:
        global predict_rows
        predict_rows = load_predict(os.environ["PEER_MODEL_PATH"])

    @bentoml.api
    def predict(self, data: list) -> list:  # the declared route, shadowed by the middleware
        return predict_rows(data)


Fast.add_asgi_middleware(FastPredict)
