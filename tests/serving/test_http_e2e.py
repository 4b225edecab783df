"""Real bentos from tiny models, served by `bentoml serve` on 127.0.0.1, called over HTTP."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest

from conduit import model_api_request
from conduit.build import build
from conduit.runtimes.flow import Flow
from conduit.serving.auth import key_sha256
from conduit.targets.local.bentoml_serving import serve_command, serve_env
from trained import iris_folder, torch_folder

pytestmark = pytest.mark.e2e

KEY = "e2e-key-0123456789"
POINT = [5.1, 3.5, 1.4, 0.2]
READY_WAIT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(tag: str, home: Path, log: Path, **extra_env: str):
    """`bentoml serve TAG` exactly as the local target starts it; stopped however the test ends."""
    port = free_port()
    env = serve_env(key_sha256(KEY), base={**os.environ, "CONDUIT_HOME": str(home), **extra_env})
    with log.open("wb") as out:
        process = subprocess.Popen(serve_command(tag, port), env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bentoml serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"not ready after {READY_WAIT_S}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("conduit-home")
    previous = os.environ.get("CONDUIT_HOME")
    os.environ["CONDUIT_HOME"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("CONDUIT_HOME", None)
    else:
        os.environ["CONDUIT_HOME"] = previous


@pytest.fixture(scope="module")
def iris(tmp_path_factory, home):
    manifest = iris_folder(tmp_path_factory.mktemp("models"))
    return manifest, build(manifest, progress=lambda line: None).tag


@pytest.fixture(scope="module")
def iris_log(tmp_path_factory):
    return tmp_path_factory.mktemp("logs") / "iris.log"


@pytest.fixture(scope="module")
def iris_url(iris, home, iris_log):
    with served(iris[1], home, iris_log) as url:
        yield url


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=30) as session:
        yield session


def post(client, url, key=KEY, headers=None, **kwargs):
    headers = {**({"Authorization": key} if key is not None else {}), **(headers or {})}
    return client.post(f"{url}/predict", headers=headers, **kwargs)


def assert_still_serving(client, url):
    assert post(client, url, json=[POINT]).status_code == 200


def test_array_body_matches_the_flow_in_process(client, iris_url, iris):
    expected = Flow.load(iris[0]).predict([POINT, POINT])
    response = post(client, iris_url, json=[POINT, POINT])
    body = response.json()
    assert response.status_code == 200 and body["result"] == expected
    assert set(body) == {"result", "run_id", "run_time_ms", "prediction_ids"} and len(body["prediction_ids"]) == 2


def test_data_parameters_body_with_bearer(client, iris_url):
    response = post(client, iris_url, key=f"Bearer {KEY}", json={"data": [POINT], "parameters": {}})
    assert response.status_code == 200 and len(response.json()["result"]) == 1


def test_multipart_files_reach_the_pre_hook(client, iris_url, iris):
    other = [6.7, 3.0, 5.2, 2.3]
    files = {"points": ("points.json", orjson.dumps([other]), "application/json")}
    response = post(client, iris_url, data={"data": orjson.dumps([POINT]).decode()}, files=files)
    assert response.status_code == 200 and response.json()["result"] == Flow.load(iris[0]).predict([other])


def test_a_csv_upload_without_data_gets_one_prediction_per_row(iris_url, iris, tmp_path):
    rows = [POINT, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    table = tmp_path / "rows.csv"
    table.write_text("\n".join(",".join(map(str, row)) for row in rows))
    with open(table, "rb") as handle:  # the requests idiom
        response = model_api_request(f"{iris_url}/predict", None, KEY, files={"table": handle})
    assert response["status_code"] == 200, response
    assert response["data"]["result"] == Flow.load(iris[0]).predict(rows)
    assert len(response["data"]["prediction_ids"]) == 3


def test_a_hook_that_raises_is_a_500_and_its_traceback_is_in_the_log(client, iris_url, iris_log):
    response = post(client, iris_url, json=["explode"])
    body = response.json()
    assert response.status_code == 500 and body["error"]["type"] == "hook_error"
    assert "Traceback" not in response.text
    log = wait_for_log(iris_log, f"predict failed (run_id {body['run_id']})")
    after = log[log.index(body["run_id"]) :]
    assert "Traceback (most recent call last)" in after and "ZeroDivisionError: the hook divided by zero" in after
    assert KEY not in log
    assert_still_serving(client, iris_url)


def wait_for_log(log: Path, text: str) -> str:
    """The log once `text` is in it: a worker's stderr reaches the file a moment after the reply."""
    deadline = time.monotonic() + READY_WAIT_S
    while text not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)
    return log.read_text(errors="replace")


@pytest.mark.parametrize(
    "key, kwargs, status, error_type",
    [
        (KEY, {"content": b"{oops", "headers": {"content-type": "application/json"}}, 400, "bad_request"),
        (None, {"json": [POINT]}, 401, "unauthorized"),
        ("wrong-key", {"json": [POINT]}, 401, "unauthorized"),
        (KEY, {"content": b"[" + b"1," * (17 * 1024 * 1024) + b"1]"}, 413, "payload_too_large"),
        (KEY, {"json": [[1.0, 2.0]]}, 422, "invalid_input"),
    ],
)
def test_errors_in_the_contract_shape_and_the_server_keeps_serving(client, iris_url, key, kwargs, status, error_type):
    response = post(client, iris_url, key=key, **kwargs)
    assert response.status_code == status
    body = response.json()
    assert body["error"]["type"] == error_type and body["error"]["message"] and body["run_id"]
    assert_still_serving(client, iris_url)


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/"])
def test_health_metrics_and_docs_need_no_key(client, iris_url, path):
    assert client.get(f"{iris_url}{path}").status_code == 200


def test_metrics_count_predict_requests_by_status(client, iris_url):
    def count(status: str) -> float:
        text = client.get(f"{iris_url}/metrics").text
        found = [line for line in text.splitlines() if line.startswith(f'conduit_predict_requests_total{{status="{status}"}}')]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

    ok, unauthorized = count("200"), count("401")
    assert_still_serving(client, iris_url)
    assert post(client, iris_url, key="wrong", json=[POINT]).status_code == 401
    assert count("200") == ok + 1 and count("401") == unauthorized + 1
    assert "conduit_predict_duration_seconds_bucket" in client.get(f"{iris_url}/metrics").text


def test_docs_path_leads_to_the_swagger_ui_without_a_key(client, iris_url):
    response = client.get(f"{iris_url}/docs", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/"
    assert client.get(f"{iris_url}/docs", follow_redirects=True).status_code == 200


def test_docs_describe_the_real_contract(client, iris_url):
    operation = client.get(f"{iris_url}/docs.json").json()["paths"]["/predict"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"200", "400", "401", "413", "422", "503", "504"} <= set(operation["responses"])
    assert operation["parameters"][0]["name"] == "Authorization"


@pytest.mark.parametrize("mode", ["0", "inner"])
def test_the_declared_bentoml_route_and_the_inner_fast_path_follow_the_same_contract(client, iris, home, tmp_path, mode):
    """CONDUIT_FAST_PATH=0: /predict goes through BentoML's IO layer; =inner: the fast path sits
    inside BentoML's middleware. Same answers as the default (in front of BentoML)."""
    with served(iris[1], home, tmp_path / "fallback.log", CONDUIT_FAST_PATH=mode) as url:
        body = post(client, url, json=[POINT]).json()
        assert body["result"] == Flow.load(iris[0]).predict([POINT]) and len(body["prediction_ids"]) == 1
        assert post(client, url, key="nope", json=[POINT]).status_code == 401
        assert post(client, url, json=[[1.0]]).status_code == 422
        assert post(client, url, content=b"{x").status_code == 400
        assert_still_serving(client, url)


def test_torch_on_default_gpu_hardware_serves_on_cpu(client, home, tmp_path):
    """A GPU deployment (resources gpu=1, CUDA base) still serves on a machine without one."""
    manifest = torch_folder(tmp_path)
    tag = build(manifest, progress=lambda line: None).tag
    with pytest.warns(RuntimeWarning):  # a GPU deployment on a machine without one runs on the CPU
        expected = Flow.load(manifest).predict([[0.1, 0.2, 0.3]])
    with served(tag, home, tmp_path / "torch.log") as url:
        response = post(client, url, json=[[0.1, 0.2, 0.3]])
        assert response.status_code == 200
        assert response.json()["result"][0] == pytest.approx(expected[0])
        assert post(client, url, json=[[0.1, 0.2]]).status_code == 422
        assert post(client, url, json=[[0.1, 0.2, 0.3], [1.0, 1.0, 1.0]]).status_code == 200
