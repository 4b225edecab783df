from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest

from conduit import model_api_request
from conduit.client import EndpointUnreachable, to_plain
from conduit.errors import UsageError
from conduit.targets.local.processes import free_port

_spec = importlib.util.spec_from_file_location("echo_server", Path(__file__).parent / "targets" / "echo_server.py")
echo_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(echo_server)


@pytest.fixture(scope="module")
def endpoint():
    with echo_server.running_in_thread() as port:
        yield f"http://127.0.0.1:{port}/predict"


def sent(response: dict):
    assert response["status_code"] == 200
    return response["data"]


def test_list_is_sent_as_a_json_array_with_the_key(endpoint):
    echoed = sent(model_api_request(endpoint, [[5.1, 3.5, 1.4, 0.2]], "secret-key"))
    assert echoed["path"] == "/predict"
    assert echoed["headers"]["authorization"] == "secret-key"
    assert echoed["headers"]["content-type"] == "application/json"
    assert json.loads(echoed["body"]) == [[5.1, 3.5, 1.4, 0.2]]


def test_numpy_array_becomes_a_list(endpoint):
    data = np.array([[1.5, 2.0], [3.0, 4.25]], dtype=np.float32)
    assert json.loads(sent(model_api_request(endpoint, data, "k"))["body"]) == [[1.5, 2.0], [3.0, 4.25]]


def test_torch_tensor_becomes_a_list(endpoint):
    torch = pytest.importorskip("torch")
    data = torch.tensor([[1.0, 2.0]], requires_grad=True)
    assert json.loads(sent(model_api_request(endpoint, data, "k"))["body"]) == [[1.0, 2.0]]


def test_nested_arrays_in_a_document_are_converted():
    document = {"data": [np.arange(3), (np.float64(0.5),)], "parameters": {"top_k": np.int64(2)}}
    assert to_plain(document) == {"data": [[0, 1, 2], [0.5]], "parameters": {"top_k": 2}}


def test_files_go_as_multipart_with_a_data_field(endpoint, tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG not really")
    echoed = sent(model_api_request(endpoint, [["caption"]], "k", files={"image": image, "raw": b"abc"}))
    assert echoed["headers"]["content-type"].startswith("multipart/form-data")
    assert 'name="data"' in echoed["body"] and '[["caption"]]' in echoed["body"]
    assert 'filename="cat.png"' in echoed["body"] and "\x89PNG not really" in echoed["body"]
    assert 'name="raw"' in echoed["body"]


def test_unreachable_endpoint_is_a_clear_error():
    with pytest.raises(EndpointUnreachable, match="could not reach"):
        model_api_request(f"http://127.0.0.1:{free_port()}/predict", [[1]], "k", timeout=2)


def test_files_as_requests_takes_them(endpoint, tmp_path):
    table = tmp_path / "rows.csv"
    table.write_text("1,2\n3,4\n")
    with open(table, "rb") as handle:
        files = {"table": handle, "raw": ("notes.txt", b"hello", "text/plain"), "blob": ("b.bin", io.BytesIO(b"\x00\x01"))}
        echoed = sent(model_api_request(endpoint, [[1]], "k", files=files))
    body = echoed["body"]
    assert 'name="table"; filename="rows.csv"' in body and "Content-Type: text/csv" in body and "1,2\n3,4\n" in body
    assert 'name="raw"; filename="notes.txt"' in body and "Content-Type: text/plain" in body and "hello" in body
    assert 'name="blob"; filename="b.bin"' in body and "Content-Type: application/octet-stream" in body


def test_files_only_request_has_no_data_field(endpoint):
    echoed = sent(model_api_request(endpoint, None, "k", files={"table": b"1,2\n"}))
    assert 'name="table"' in echoed["body"] and 'name="data"' not in echoed["body"]


def test_an_unusable_file_value_is_a_clear_error(endpoint):
    with pytest.raises(UsageError, match=r"^file 'table': expected bytes, a path, an open file or \(filename, file\[, content_type\]\), got int$"):
        model_api_request(endpoint, [[1]], "k", files={"table": 3})
