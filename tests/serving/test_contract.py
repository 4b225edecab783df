"""The predict contract's pure parts, without a server."""
from __future__ import annotations

import asyncio
import hashlib
import sys
import uuid

import orjson
import pytest

from conduit.errors import BadRequest, InputError, PayloadTooLarge, Unauthorized
from conduit.serving.auth import KeyCheck, key_sha256, presented_key
from conduit.serving.contract import (
    error_body,
    from_document,
    parse_form_fields,
    parse_json,
    prediction_ids,
    success_body,
)
from conduit.serving.handler import header_values, read_body, replay
from conduit.serving.predictor import CallPolicy
from conduit.targets.local.bentoml_serving import serve_command, serve_env


def test_bare_array_body():
    request = parse_json(b"[[5.1, 3.5, 1.4, 0.2]]")
    assert request.data == [[5.1, 3.5, 1.4, 0.2]] and request.parameters is None and request.files == {}


def test_data_and_parameters_body():
    request = parse_json(b'{"data": ["hi"], "parameters": {"top_k": 2}}')
    assert request.data == ["hi"] and request.parameters == {"top_k": 2}


@pytest.mark.parametrize(
    "body, words",
    [
        (b"", "empty body"),
        (b"{nope", "not valid JSON"),
        (b"42", "JSON array"),
        (b"[]", "empty"),
        (b'{"data": 3}', "must be a JSON array"),
        (b'{"parameters": {}}', "missing 'data'"),
        (b'{"data": [1], "extra": 1}', "unknown key"),
        (b'{"data": [1], "parameters": [1]}', "must be a JSON object"),
    ],
)
def test_malformed_bodies_are_400(body, words):
    with pytest.raises(BadRequest, match=words) as caught:
        parse_json(body)
    assert caught.value.http_status == 400


def test_form_with_data_parameters_and_files():
    request = parse_form_fields('{"data": [[1, 2]]}', '{"a": 1}', {"image": b"\x00\x01"})
    assert request.data == [[1, 2]] and request.parameters == {"a": 1} and request.files == {"image": b"\x00\x01"}


def test_form_may_be_files_only_but_not_empty():
    request = parse_form_fields(None, '{"a": 1}', {"points": b"[]"})
    assert request.data is None and request.parameters == {"a": 1} and request.files == {"points": b"[]"}
    with pytest.raises(BadRequest, match=r"^multipart body has neither a 'data' field \(JSON text of the data points\) nor files$"):
        parse_form_fields(None, None, {})
    with pytest.raises(BadRequest, match="'parameters' is not valid JSON"):
        parse_form_fields("[1]", "{", {})


def test_success_envelope_has_one_prediction_id_per_result():
    body = orjson.loads(success_body([[0.1, 0.9], [0.8, 0.2]], "run-1", 0.12345))
    assert body["result"] == [[0.1, 0.9], [0.8, 0.2]] and body["run_id"] == "run-1"
    assert body["run_time_ms"] == 0.123
    assert len(body["prediction_ids"]) == 2 and len(set(body["prediction_ids"])) == 2


def test_success_envelope_serialises_numpy():
    import numpy as np

    body = orjson.loads(success_body([np.array([1.5, 2.0]), np.float32(3.0)], "r", 1.0))
    assert body["result"] == [[1.5, 2.0], 3.0]


def test_error_envelope():
    body = orjson.loads(error_body(InputError("bad shape"), "run-2"))
    assert body == {"error": {"type": "invalid_input", "message": "bad shape"}, "run_id": "run-2"}


def test_key_check_accepts_plain_and_bearer_and_refuses_the_rest():
    check = KeyCheck(key_sha256("s3cret"))
    check.verify(b"s3cret")
    check.verify(b"Bearer s3cret")
    check.verify(b"bearer   s3cret ")
    for header in (None, b"", b"s3cre", b"Bearer wrong", b"s3cret2"):
        with pytest.raises(Unauthorized):
            check.verify(header)


def test_a_server_without_a_key_hash_refuses_every_call():
    for configured in (None, "", "zz", "ab" * 8):
        check = KeyCheck(configured)
        assert not check.configured
        with pytest.raises(Unauthorized, match="no API key configured"):
            check.verify(b"anything")


def test_presented_key_and_hash():
    assert presented_key(b"Bearer abc") == b"abc" and presented_key(b" abc ") == b"abc"
    assert key_sha256("abc") == hashlib.sha256(b"abc").hexdigest()


def test_header_values_in_one_pass():
    headers = [(b"content-type", b"application/json"), (b"authorization", b"k")]
    assert header_values(headers, b"authorization", b"content-length") == [b"k", None]


def chunks(*parts: bytes):
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]

    async def receive():
        return messages.pop(0)

    return receive


def test_read_body_joins_chunks_and_caps_size():
    assert asyncio.run(read_body(chunks(b"[1,", b"2]"), None, 10)) == b"[1,2]"
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(chunks(b"12345", b"67890", b"1"), None, 10))
    with pytest.raises(PayloadTooLarge):  # refused from the header, before reading
        asyncio.run(read_body(chunks(b""), b"11", 10))


def test_replay_hands_back_the_body_once():
    receive = replay(b"abc")
    assert asyncio.run(receive())["body"] == b"abc"
    assert asyncio.run(receive())["type"] == "http.disconnect"


def test_call_policy_learns_when_inline_is_cheap():
    policy = CallPolicy(inline_budget_ms=2.0)
    assert not policy.inline(1)  # unknown model: use a thread
    policy.record(points=10, elapsed_ms=0.5)  # 0.05 ms per point
    assert policy.inline(1) and policy.inline(40) and not policy.inline(41)
    for _ in range(30):
        policy.record(points=1, elapsed_ms=50.0)  # the model turned out slow
    assert not policy.inline(1)


def test_serve_env_hands_over_the_hash_never_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    env = serve_env("ab" * 32, base={"CONDUIT_API_KEY": "plain", "PATH": "/bin"})
    assert "CONDUIT_API_KEY" not in env and "plain" not in env.values()
    assert env["CONDUIT_API_KEY_SHA256"] == "ab" * 32 and env["PATH"] == "/bin"
    assert env["BENTOML_HOME"] == str(tmp_path / "bentoml") and env["HF_HUB_OFFLINE"] == "1"


def test_serve_command():
    assert serve_command("iris:abc", 4321) == [
        sys.executable, "-m", "bentoml", "serve", "iris:abc", "--host", "127.0.0.1", "--port", "4321"
    ]


def test_ids_are_version_7_uuids_ordered_by_the_millisecond_they_were_made():
    import time

    from conduit.serving.contract import new_run_id

    before = time.time_ns() // 1_000_000
    ids = [uuid.UUID(value) for value in prediction_ids(1000) + [new_run_id()]]
    after = time.time_ns() // 1_000_000
    assert {(value.version, value.variant) for value in ids} == {(7, uuid.RFC_4122)}
    assert len(set(ids)) == len(ids)
    assert all(before <= value.int >> 80 <= after for value in ids)  # the millisecond in the first 48 bits
