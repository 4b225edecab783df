"""Where the fast path sits in the ASGI app BentoML serves (CONDUIT_FAST_PATH), in-process."""
from __future__ import annotations

import asyncio

import bentoml
import httpx
import pytest

from conduit.runtimes.flow import Flow
from conduit.serving.asgi import PredictMiddleware
from conduit.serving.auth import key_sha256
from conduit.serving.predictor import Predictor
from conduit.serving.auth import API_KEY_SHA256_ENV
from conduit.serving.service import ConduitService, ServiceRuntime
from trained import iris_folder

KEY = "layers-key"
POINT = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def iris_flow(tmp_path_factory):
    return Flow.load(iris_folder(tmp_path_factory.mktemp("iris")))


def service_with_runtime(mode: str, monkeypatch, flow) -> tuple[object, ServiceRuntime]:
    monkeypatch.setenv("CONDUIT_FAST_PATH", mode)
    monkeypatch.setenv(API_KEY_SHA256_ENV, key_sha256(KEY))
    runtime = ServiceRuntime(".", max_body_bytes=4096, max_concurrency=8)
    runtime.handler.predictor = Predictor(flow)

    @bentoml.service(name=f"layers-{mode}", service_class=ConduitService)
    class Layers:
        @bentoml.api(route="/predict")
        async def predict(self, body: bytes, /, ctx: bentoml.Context):
            return await runtime.api_response(body, ctx)

    runtime.install(Layers)
    return Layers, runtime


def get_and_post(app) -> tuple[httpx.Response, httpx.Response]:
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            livez = await client.get("/livez")
            predicted = await client.post("/predict", json=[POINT], headers={"Authorization": KEY})
            return livez, predicted

    return asyncio.run(go())


def test_by_default_the_fast_path_is_outside_bentoml_and_passes_the_rest_on(monkeypatch, iris_flow):
    service, runtime = service_with_runtime("1", monkeypatch, iris_flow)
    app = service.to_asgi()
    assert isinstance(app, PredictMiddleware) and app.handler is runtime.handler
    assert not any(cls is PredictMiddleware for cls, _ in service.middlewares)
    livez, predicted = get_and_post(app)
    assert livez.status_code == 200  # BentoML's own route, reached through the front layer
    assert predicted.status_code == 200 and predicted.json()["result"] == iris_flow.predict([POINT])


def test_inner_mode_is_a_bentoml_user_middleware(monkeypatch, iris_flow):
    service, runtime = service_with_runtime("inner", monkeypatch, iris_flow)
    app = service.to_asgi()
    assert not isinstance(app, PredictMiddleware)
    assert [options["handler"] for cls, options in service.middlewares if cls is PredictMiddleware] == [runtime.handler]


def test_off_leaves_predict_to_the_declared_route(monkeypatch, iris_flow):
    service, _ = service_with_runtime("0", monkeypatch, iris_flow)
    app = service.to_asgi()
    assert not isinstance(app, PredictMiddleware)
    assert not any(cls is PredictMiddleware for cls, _ in service.middlewares)
