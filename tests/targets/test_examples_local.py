"""Every example, trained in a temp folder, deployed on the local target and called over HTTP
with the seed's request shape: the answer equals `conduit run`'s (Flow.predict in-process)."""
from __future__ import annotations

import json
import math

import pytest

from conduit import model_api_request
from conduit.serving.contract import from_document
from conduit.manifest import load
from conduit.runtimes.flow import Flow
from conduit.targets import local
from conduit.targets.local.processes import port_open

from conftest import TEST_KEY, example_names, replicas_of, trained_example

pytestmark = pytest.mark.e2e


def same(served, in_process, rel: float = 1e-5) -> bool:
    """Equal as JSON, floats to `rel` (the server's float32 maths may differ in the last bits)."""
    if isinstance(served, float) or isinstance(in_process, float):
        return math.isclose(served, in_process, rel_tol=rel, abs_tol=1e-7)
    if isinstance(served, list) and isinstance(in_process, list):
        return len(served) == len(in_process) and all(same(a, b, rel) for a, b in zip(served, in_process))
    if isinstance(served, dict) and isinstance(in_process, dict):
        return served.keys() == in_process.keys() and all(same(served[k], in_process[k], rel) for k in served)
    return served == in_process


@pytest.mark.parametrize("name", example_names())
def test_example_served_locally_answers_like_conduit_run(name, conduit_home, tmp_path):
    folder = trained_example(name, tmp_path)
    manifest = load(folder / "conduit.yaml")
    body = json.loads((folder / "request.json").read_text())
    request = from_document(body)  # the endpoint's own parser
    expected = json.loads(json.dumps(Flow.load(manifest).predict(request.data, parameters=request.parameters or {})))

    deployment = local.apply(manifest, progress=print)
    try:
        assert deployment.endpoint == f"http://127.0.0.1:{deployment.port}/v1/default/{manifest.name}/predict"
        response = model_api_request(deployment.endpoint, body, TEST_KEY, timeout=120)
        assert response["status_code"] == 200, response
        answer = response["data"]
        assert len(answer["prediction_ids"]) == len(request.data)
        assert same(answer["result"], expected), (answer["result"], expected)
    finally:
        replica_ports = [row["port"] for row in replicas_of(manifest.name)]
        local.delete(manifest.name, progress=print)
    # Its replicas stopped, and the gateway with its last deployment.
    assert not port_open(deployment.port) and not [port for port in replica_ports if port_open(port)]
