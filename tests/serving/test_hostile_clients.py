"""Issue 16: the serving path as an attacker and an unlucky client meet it, over raw sockets
against a real `bentoml serve` of iris on 127.0.0.1 (items 8, 9 and 10 in part)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from rawhttp import Reply, exchange, parse_replies, post_bytes, request_head, send_and_read
from test_http_e2e import KEY, POINT, home, iris, iris_log, iris_url  # noqa: F401 the shared server fixtures

pytestmark = pytest.mark.e2e

TRIES = 10
CHUNK = b"1," * 8192  # 16 KiB of a JSON array's inside
OVER_THE_LIMIT = 40 * 1024 * 1024  # the default cap is 32 MiB


@pytest.fixture(scope="module")
def port(request):
    """The served iris's port (the fixture by name: its import above is only to register it)."""
    return int(request.getfixturevalue("iris_url").rsplit(":", 1)[1])


def early_request(key: str, declared_length: int) -> bytes:
    """Headers that get an answer before the body is read, from a client that will close."""
    return request_head(
        headers={"Authorization": key, "Content-Type": "application/json", "Content-Length": str(declared_length), "Connection": "close"}
    )


def tries(port: int, writes: list[bytes], pause_s: float = 0.0) -> list[Reply]:
    """TRIES clients at once, each sending `writes` and then reading the answer."""
    with ThreadPoolExecutor(TRIES) as pool:
        return list(pool.map(lambda _: send_and_read(port, *writes, pause_s=pause_s), range(TRIES)))


def error_types(replies: list[Reply]) -> list:
    return [(reply.status, reply.json()["error"]["type"]) if reply.status else "reset" for reply in replies]


@pytest.mark.parametrize("pause_s", [0.0, 0.05], ids=["body-at-once", "slow-body"])
def test_an_early_413_reaches_a_client_that_sent_connection_close(port, pause_s):
    """Item 8: the answer came before the body was read; closing with unread bytes reset it."""
    writes = [early_request(KEY, OVER_THE_LIMIT), *[CHUNK] * 16]
    assert error_types(tries(port, writes, pause_s)) == [(413, "payload_too_large")] * TRIES


@pytest.mark.parametrize("pause_s", [0.0, 0.05], ids=["body-at-once", "slow-body"])
def test_an_early_401_reaches_a_client_that_sent_connection_close(port, pause_s):
    body = b"[" + CHUNK * 16 + b"1]"
    writes = [early_request("wrong-key", len(body)), *[body[i : i + len(CHUNK)] for i in range(0, len(body), len(CHUNK))]]
    assert error_types(tries(port, writes, pause_s)) == [(401, "unauthorized")] * TRIES


def test_an_early_401_to_a_client_that_stops_sending_still_arrives(port):
    writes = [early_request("wrong-key", 1024 * 1024), CHUNK * 4]
    assert error_types(tries(port, writes)) == [(401, "unauthorized")] * TRIES


def test_two_pipelined_requests_before_a_malformed_one_are_all_answered_in_order(port):
    """Item 10: the parser's 400 for the third request went out first and closed the connection."""
    valid = post_bytes(orjson.dumps([POINT]), KEY)
    other = post_bytes(orjson.dumps([POINT, POINT]), KEY)
    replies = parse_replies(exchange(port, valid + other + b"NOT AN HTTP REQUEST\r\n\r\n"))
    assert [reply.status for reply in replies] == [200, 200, 400]
    assert [len(reply.json()["result"]) for reply in replies[:2]] == [1, 2]


def test_pipelined_requests_with_a_malformed_body_are_all_answered_in_order(port):
    requests = [post_bytes(orjson.dumps([POINT]), KEY), post_bytes(b"{oops", KEY), post_bytes(orjson.dumps([POINT]), KEY, Connection="close")]
    replies = parse_replies(exchange(port, b"".join(requests)))
    assert [reply.status for reply in replies] == [200, 400, 200]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"[[null, 3.5, 1.4, 0.2]]", "(a null is not a number: fill it in, or add a pre hook that does)"),
        (b'[["5.1", "3.5", "1.4", "0.2"]]', "(numbers as strings are not converted: send them as JSON numbers)"),
    ],
)
def test_null_and_numeric_string_inputs_are_a_422_over_http(port, body, message):
    """Item 9: they were a 200 with a number computed from NaN, or from coerced strings."""
    reply = send_and_read(port, post_bytes(body, KEY, Connection="close"))
    assert reply.status == 422 and reply.json()["error"]["type"] == "invalid_input"
    assert reply.json()["error"]["message"].endswith(message)
