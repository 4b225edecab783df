"""What the generated service.py is glue for: the per-worker runtime and BentoML wiring.

`service.py` (rendered from templates/service.py.j2) declares the BentoML service with the
deployment's resources and limits, and delegates everything here:

- `ServiceRuntime` lives once per worker process: the key check, the limits, the handler, and the
  Predictor, loaded when BentoML constructs the service instance (never at import: `bentoml build`
  imports service.py too).
- `ConduitService` is the BentoML Service class whose /docs describe the real /predict contract,
  and which can put raw ASGI layers in front of BentoML's app (see `conduit.serving.asgi`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from conduit import startup

# First, before BentoML's service layer and server app load in a worker (see conduit.startup).
STARTING_WORKER = startup.begin_in_bentoml_worker()

from bentoml import Service  # noqa: E402

from conduit.serving.asgi import DocsAlias, OnShutdown, PredictMiddleware, fast_path_mode  # noqa: E402
from conduit.serving.auth import API_KEY_SHA256_ENV, KeyCheck  # noqa: E402
from conduit.serving.handler import Limits, PredictHandler  # noqa: E402
from conduit.serving.metrics import predict_metrics  # noqa: E402
from conduit.serving.openapi import with_predict_operation  # noqa: E402

PREDICT_ROUTE = "/predict"


class ServiceRuntime:
    def __init__(
        self, bento_dir: Path, max_body_bytes: int, max_concurrency: int, timeout_s: Optional[float] = None
    ) -> None:
        self.bento_dir = Path(bento_dir)
        self.timeout_s = timeout_s
        key_check = KeyCheck(os.environ.get(API_KEY_SHA256_ENV))
        self.handler = PredictHandler(key_check, Limits(max_body_bytes, max_concurrency), metrics=predict_metrics())

    def load(self) -> None:
        """Load the Flow; called in each worker when BentoML creates the service instance."""
        from conduit.serving import prediction_log
        from conduit.serving.bento import load_manifest
        from conduit.serving.predictor import Predictor

        manifest = load_manifest(self.bento_dir)
        # First, so the 503s answered while the model loads are recorded too.
        self.handler.prediction_log = prediction_log.open_for(manifest)
        self.handler.predictor = Predictor.for_manifest(manifest, timeout_s=self.timeout_s)
        if STARTING_WORKER:
            startup.settle()  # the model and its framework are in: collect at the usual rate

    @property
    def ready(self) -> bool:
        return self.handler.predictor is not None

    async def api_response(self, body: bytes, ctx):
        """The declared @bentoml.api route: the same contract through BentoML's IO layer."""
        from starlette.responses import Response

        from conduit.serving.handler import replay

        headers = ctx.request.headers.raw
        status, payload = await self.handler.respond(headers, replay(body))
        ctx.response.status_code = status  # BentoML overrides a Response's status with this
        return Response(payload, status_code=status, media_type="application/json")

    def install(self, service: ConduitService) -> None:
        """Put the raw-ASGI fast path where CONDUIT_FAST_PATH says (default: in front of BentoML)."""
        mode = fast_path_mode()
        if mode == "front":
            service.add_front_middleware(PredictMiddleware, handler=self.handler, path=PREDICT_ROUTE)
        elif mode == "inner":
            service.add_asgi_middleware(PredictMiddleware, handler=self.handler, path=PREDICT_ROUTE)
        service.add_front_middleware(DocsAlias)  # after the fast path: /predict meets no extra layer
        service.add_front_middleware(OnShutdown, callback=self.shutdown)

    def shutdown(self) -> None:
        """The worker is stopping: write what its prediction log still holds."""
        if self.handler.prediction_log is not None:
            self.handler.prediction_log.close()


class ConduitService(Service):
    """BentoML's Service with /docs for conduit's contract and raw ASGI layers in front of its app."""

    @property
    def openapi_spec(self):
        summary = f"Predict with {self.name}"
        return with_predict_operation(super().openapi_spec, PREDICT_ROUTE, summary)

    def add_front_middleware(self, middleware_cls: type, **options: Any) -> None:
        """Like `add_asgi_middleware`, but outside all of BentoML's own middleware (the first
        added is the outermost). Whatever it does not answer reaches BentoML's app unchanged."""
        self.__dict__.setdefault("front_middlewares", []).append((middleware_cls, options))

    def to_asgi(self, is_main: bool = True):
        from conduit.serving import http_protocol

        http_protocol.install()  # the worker's uvicorn loads its protocol after this: pipelined answers in order
        app = super().to_asgi(is_main)
        for middleware_cls, options in reversed(self.__dict__.get("front_middlewares", [])):
            app = middleware_cls(app, **options)
        return app
