"""The handler and the raw-ASGI middleware around a real iris Flow, in-process (no server)."""
from __future__ import annotations

import asyncio
import logging

import httpx
import orjson
import pytest

from conduit.runtimes.flow import Flow
from conduit.serving.asgi import PredictMiddleware
from conduit.serving.auth import KeyCheck, key_sha256
from conduit.serving.contract import PredictRequest
from conduit.serving.handler import Limits, PredictHandler, log_failure
from conduit.serving.predictor import Predictor
from trained import iris_folder, write_manifest

KEY = "test-key"
POINT = [5.1, 3.5, 1.4, 0.2]


async def passthrough(scope, receive, send):
    """Stands where BentoML's routes are: everything the middleware does not answer lands here."""
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"passed"})


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    return Flow.load(iris_folder(tmp_path_factory.mktemp("iris")))


@pytest.fixture
def handler(flow):
    return PredictHandler(KeyCheck(key_sha256(KEY)), Limits(max_body_bytes=4096, max_concurrency=4), Predictor(flow))


def call(handler, **request):
    async def go():
        transport = httpx.ASGITransport(app=PredictMiddleware(passthrough, handler))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(**request)

    return asyncio.run(go())


def predict(handler, headers=None, **body):
    return call(handler, method="POST", url="/predict", headers={"Authorization": KEY, **(headers or {})}, **body)


def test_array_body_gives_the_flow_result(handler, flow):
    response = predict(handler, json=[POINT, POINT])
    body = response.json()
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert body["result"] == flow.predict([POINT, POINT])
    assert len(body["prediction_ids"]) == 2 and body["run_time_ms"] >= 0


def test_data_parameters_body_and_bearer(handler):
    response = predict(handler, headers={"Authorization": f"Bearer {KEY}"}, json={"data": [POINT], "parameters": {}})
    assert response.status_code == 200 and len(response.json()["result"]) == 1


def test_multipart_files_reach_the_pre_hook(handler, flow):
    other = [6.7, 3.0, 5.2, 2.3]
    files = {"points": ("points.json", orjson.dumps([other]), "application/json")}
    response = predict(handler, data={"data": orjson.dumps([POINT]).decode()}, files=files)
    assert response.status_code == 200 and response.json()["result"] == flow.predict([other])
    response = predict(handler, data={"data": orjson.dumps({"data": [POINT]}).decode()}, files={"note": ("n.txt", b"x")})
    assert response.status_code == 200 and response.json()["result"] == flow.predict([POINT])
    only_parameters = b'--b\r\nContent-Disposition: form-data; name="parameters"\r\n\r\n{}\r\n--b--\r\n'
    response = predict(handler, headers={"Content-Type": "multipart/form-data; boundary=b"}, content=only_parameters)
    assert response.status_code == 400 and "neither a 'data' field" in response.json()["error"]["message"]
    response = predict(handler, files=[("table", ("a.csv", b"1")), ("table", ("b.csv", b"2"))])
    assert response.status_code == 400 and "'table' appears twice" in response.json()["error"]["message"]


def test_a_files_only_request_has_one_prediction_id_per_row_the_pre_hook_returns(handler, flow):
    table = "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n"
    response = predict(handler, files={"table": ("rows.csv", table.encode(), "text/csv")})
    body = response.json()
    assert response.status_code == 200, body
    assert body["result"] == flow.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])
    assert len(body["prediction_ids"]) == 3


def test_the_pre_hook_sees_each_file_with_its_filename_and_content_type(tmp_path):
    folder = iris_folder(tmp_path).base_dir
    (folder / "shape.py").write_text(
        "def shape(data, files):\n"
        "    upload = files['f']\n"
        "    assert data is None and isinstance(upload, bytes) and upload == b'5,3,1,0'\n"
        "    assert (upload.filename, upload.content_type) == ('one.csv', 'text/csv'), (upload.filename, upload.content_type)\n"
        "    return [[5.0, 3.0, 1.0, 0.0]]\n"
    )
    stage = {"model_type": "sklearn_classifier", "path": "model.pkl", "pre": "shape.py:shape"}
    manifest = write_manifest(folder, {"name": "shape", "flow": [stage]})
    handler = PredictHandler(KeyCheck(key_sha256(KEY)), Limits(), Predictor(Flow.load(manifest)))
    response = predict(handler, files={"f": ("one.csv", b"5,3,1,0", "text/csv")})
    assert response.status_code == 200, response.json()
    assert len(response.json()["result"]) == 1


def test_a_hook_that_raises_is_a_500_logged_with_its_run_id_and_traceback(handler, caplog):
    with caplog.at_level("ERROR", logger="conduit.serving"):
        response = predict(handler, json=["explode"])
    body = response.json()
    assert response.status_code == 500 and body["error"]["type"] == "hook_error"
    assert "Traceback" not in response.text
    logged = [record for record in caplog.records if body["run_id"] in record.getMessage()]
    assert [record.exc_info is not None for record in logged] == [True, False]  # the run_id again after it
    assert "ZeroDivisionError: the hook divided by zero" in caplog.text and KEY not in caplog.text


@pytest.mark.parametrize(
    "request_kwargs, status, error_type",
    [
        ({"content": b"{not json"}, 400, "bad_request"),
        ({"json": {"rows": [1]}}, 400, "bad_request"),
        ({"json": [[1.0, 2.0]]}, 422, "invalid_input"),
        ({"json": [POINT] * 400}, 413, "payload_too_large"),
        ({"json": [POINT], "headers": {"Authorization": "wrong"}}, 401, "unauthorized"),
    ],
)
def test_error_statuses_and_shape(handler, request_kwargs, status, error_type):
    response = predict(handler, **request_kwargs)
    body = response.json()
    assert response.status_code == status and body["error"]["type"] == error_type
    assert body["error"]["message"] and body["run_id"]
    assert predict(handler, json=[POINT]).status_code == 200  # still serving


def test_missing_key_is_401(handler):
    response = call(handler, method="POST", url="/predict", json=[POINT])
    assert response.status_code == 401 and "missing API key" in response.json()["error"]["message"]


def test_not_loaded_yet_is_503(handler):
    handler.predictor = None
    response = predict(handler, json=[POINT])
    assert response.status_code == 503 and response.json()["error"]["type"] == "unavailable"


def test_over_the_concurrency_limit_is_503(handler):
    handler.in_flight = handler.limits.max_concurrency
    assert predict(handler, json=[POINT]).status_code == 503
    handler.in_flight = 0
    assert predict(handler, json=[POINT]).status_code == 200


def test_a_bug_is_a_500_in_the_contract_shape(flow):
    class Broken:
        async def predict(self, request):
            raise ZeroDivisionError("oops")

    handler = PredictHandler(KeyCheck(key_sha256(KEY)), Limits(), Broken())
    response = predict(handler, json=[POINT])
    assert response.status_code == 500 and "ZeroDivisionError" in response.json()["error"]["message"]


def test_everything_else_passes_through(handler):
    assert call(handler, method="GET", url="/predict").status_code == 299
    assert call(handler, method="POST", url="/other", json=[POINT]).status_code == 299
    assert call(handler, method="GET", url="/healthz").status_code == 299


def test_fast_models_run_inline_after_the_first_call(flow):
    predictor = Predictor(flow)
    asyncio.run(predictor.predict(PredictRequest([POINT])))
    assert predictor.policy.inline(1)  # iris takes well under the 2 ms budget per point


class SlowFlow:
    """The iris flow behind a model call that takes `seconds` (a stuck model, say)."""

    def __init__(self, flow, seconds: float) -> None:
        self.flow, self.seconds = flow, seconds

    def predict(self, data, parameters=None, files=None, inputs=None):
        import time

        time.sleep(self.seconds)
        return self.flow.predict(data, parameters=parameters, files=files, inputs=inputs)


def test_a_model_call_past_the_timeout_is_a_504_and_the_server_keeps_serving(flow):
    slow = Predictor(SlowFlow(flow, 0.5), timeout_s=0.05)
    handler = PredictHandler(KeyCheck(key_sha256(KEY)), Limits(), slow)
    response = predict(handler, json=[POINT])
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout"
    handler.predictor = Predictor(flow, timeout_s=30)
    assert predict(handler, json=[POINT]).status_code == 200


def test_a_failure_is_logged_after_bentoml_disabled_the_loggers_made_before_its_set_up(caplog, monkeypatch):
    """A forked worker imports the handler before BentoML's dictConfig(disable_existing_loggers=True)."""
    monkeypatch.setattr(logging.getLogger("conduit.serving"), "disabled", True)
    with caplog.at_level("ERROR", logger="conduit.serving"):
        log_failure("run-after-dict-config", ZeroDivisionError("boom"))
    assert "predict failed (run_id run-after-dict-config): ZeroDivisionError: boom" in caplog.text
