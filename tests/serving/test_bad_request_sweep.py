"""Issue 16's sweep: over a hundred kinds of bad request against a real iris server on 127.0.0.1.
None may be a 5xx, every one gets an answer, and the same worker serves a valid request after."""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from rawhttp import Reply, post_bytes, request_head, send_and_read
from test_http_e2e import KEY, home, iris, iris_log, iris_url  # noqa: F401 the shared server fixtures

pytestmark = pytest.mark.e2e

ROW = b"[5.1, 3.5, 1.4, 0.2]"
BOUNDARY = "sweep-boundary"

MALFORMED_JSON = [
    b"{", b"[", b"[[1,2", b"]", b"nul", b"tru", b"[1,]", b"[,1]", b"{'data': 1}", b"[NaN]", b"[Infinity]",
    b"[-Infinity]", b"[1e400]", b"\xff\xfe[1]", b"\x00", b" ", b"[[1 2 3 4]]", b'{"data": }', b'{"data": [[1]],}',
    b"[[1,2,3,4]] trailing", b'"unterminated', b"[01]", b"[+1]", b"[.5]", b"[1.]", b'["\\ud800"]', b"/* c */ [1]",
    b'{"data": [' + ROW + b"]" , b"\xef\xbb\xbf[" + ROW + b"]",
]
WRONG_TYPES = [
    b'"text"', b"1", b"true", b"null", b"{}", b'{"data": 1}', b'{"data": "x"}', b'{"data": []}', b"[]",
    b'{"data": [' + ROW + b'], "parameters": 5}', b'{"data": [' + ROW + b'], "parameters": []}', b'{"extra": 1}',
    b'{"data": null}', b"[[null, 3.5, 1.4, 0.2]]", b"[null]", b'[["5.1", "3.5", "1.4", "0.2"]]', b'[["a", "b", "c", "d"]]',
    b"[[" + ROW + b"]]", b"[[1, 2, 3]]", b"[[1, 2, 3, 4, 5]]", b"[{}]", b"[[{}, {}, {}, {}]]", b"[[[], [], [], []]]",
    b"[" + ROW + b", [1, 2]]", b"[1, 2, 3]", b'[{"a": 1}]', b"[[true, false, true, false]]",
]
HUGE_NUMBERS = [
    b"[[1e308, 1e308, 1e308, 1e308]]", b"[[-1e308, -1e308, -1e308, -1e308]]", b"[[1e308, -1e308, 1e308, -1e308]]",
    b"[[1e-400, 1e-400, 1e-400, 1e-400]]", b"[[123456789012345678901234567890, 1, 1, 1]]", b"[[" + b"9" * 1000 + b", 1, 1, 1]]",
    b"[[18446744073709551616, 1, 1, 1]]", b"[[-9223372036854775809, 1, 1, 1]]",
]
DEEP_NESTING = [b"[" * depth + b"1" + b"]" * depth for depth in (10, 65, 100, 1000, 10000, 100000)] + [
    b'{"data": ' * 500 + b"[]" + b"}" * 500, b"[" + b"1," * 100000 + b"1]", b"[[" + b"1," * 100000 + b"1]]",
]


def multipart(*parts: str, boundary: str = BOUNDARY) -> bytes:
    return "".join(f"--{boundary}\r\n{part}\r\n" for part in parts).encode() + f"--{boundary}--\r\n".encode()


def field(name: str, value: str, extra: str = "") -> str:
    return f'Content-Disposition: form-data; name="{name}"{extra}\r\n\r\n{value}'


MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
BAD_MULTIPART = [
    (b"--x\r\n", "multipart/form-data"),
    (b"not multipart at all", MULTIPART_TYPE),
    (multipart(field("data", "[[1, 2"))[:-10], MULTIPART_TYPE),
    (multipart(field("data", "{oops")), MULTIPART_TYPE),
    (multipart(field("data", "1")), MULTIPART_TYPE),
    (multipart(field("data", f"[{ROW.decode()}]"), field("parameters", "[1]")), MULTIPART_TYPE),
    (multipart(field("data", f"[{ROW.decode()}]"), field("data", f"[{ROW.decode()}]")), MULTIPART_TYPE),
    (multipart(field("other", "x")), MULTIPART_TYPE),
    (multipart(field("data", f"[{ROW.decode()}]"), boundary="other"), MULTIPART_TYPE),
    (multipart("no disposition here"), MULTIPART_TYPE),
    (multipart(field("points", "[[1, 2]]", '; filename="p.json"')), MULTIPART_TYPE),
    (multipart(field("points", "[[1, 2, 3, 4]]", '; filename="p.json"'), field("data", "{}")), MULTIPART_TYPE),
    (multipart(field("data", "[[null, 1, 2, 3]]")), MULTIPART_TYPE),
    (b"", MULTIPART_TYPE),
    (multipart(field("data", "[]")), "multipart/form-data; boundary=" + "b" * 200),
    (multipart(field("data", f"[{ROW.decode()}]")), "multipart/form-data; boundary="),
]

GOOD_BODY = b"[" + ROW + b"]"


def raw(head: str, body: bytes = b"") -> bytes:
    return head.encode("latin-1") + b"\r\n\r\n" + body


BAD_HTTP = [
    post_bytes(GOOD_BODY, KEY, Connection="close", content_type="text/plain"),
    post_bytes(GOOD_BODY, KEY, Connection="close", content_type="application/x-www-form-urlencoded"),
    post_bytes(GOOD_BODY, KEY, Connection="close", content_type="\x7f\x01garbage"),
    post_bytes(GOOD_BODY, None, Connection="close"),
    post_bytes(GOOD_BODY, "", Connection="close"),
    post_bytes(GOOD_BODY, "Bearer", Connection="close"),
    post_bytes(GOOD_BODY, "Bearer ", Connection="close"),
    post_bytes(GOOD_BODY, "bearer  " + KEY + "x", Connection="close"),
    post_bytes(GOOD_BODY, KEY + " ", Connection="close"),
    post_bytes(GOOD_BODY, "Basic " + KEY, Connection="close"),
    post_bytes(GOOD_BODY, "x" * 60000, Connection="close"),
    post_bytes(GOOD_BODY, "\xff\xfe" + KEY, Connection="close"),
    post_bytes(GOOD_BODY, KEY, Connection="close", **{"Content-Encoding": "gzip"}),
    post_bytes(GOOD_BODY, KEY, Connection="close", **{"Transfer-Encoding": "gzip"}),
    post_bytes(GOOD_BODY, KEY, Connection="close", **{"X-Huge": "v" * 60000}),
    post_bytes(GOOD_BODY, KEY, Connection="close", **{f"X-Many-{i}": "v" for i in range(500)}),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: abc\r\nConnection: close", GOOD_BODY),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: -1\r\nConnection: close", GOOD_BODY),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: 3\r\nContent-Length: 20\r\nConnection: close", GOOD_BODY),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: 99999999999999999999999\r\nConnection: close", GOOD_BODY),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close", b"0\r\n\r\n"),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close", b"zz\r\nabc\r\n0\r\n\r\n"),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close", b"3\r\n[[1\r\n0\r\n\r\n"),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close", b"ffffffffffffffffff\r\n[\r\n0\r\n\r\n"),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nBad Header: x\r\nConnection: close"),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nX-Nul: a\x00b\r\nConnection: close"),
    raw(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\n folded: continuation\r\nConnection: close"),
    raw("GARBAGE"),
    raw("POST /predict HTTP/9.9\r\nHost: x"),
    raw("POST predict HTTP/1.1\r\nHost: x"),
    raw("\x00\x01\x02\x03"),
    raw("POST /predict"),
    raw("POST /predict HTTP/1.0"),
    raw(f"POST /predict HTTP/1.1\r\nAuthorization: {KEY}\r\nContent-Length: 2\r\nConnection: close", b"[]"),
    raw("\r\n\r\nPOST /predict HTTP/1.1\r\nHost: x\r\nConnection: close"),
    raw("POST /" + "p" * 100000 + " HTTP/1.1\r\nHost: x\r\nConnection: close"),
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)) + b"\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    raw("POST /predict HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"),
    raw("POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: no\r\nExpect: 100-continue\r\nContent-Length: 10\r\nConnection: close"),
]
WRONG_METHODS_AND_PATHS = [
    request_head(method, path, {"Authorization": KEY, "Connection": "close"})
    for method, path in [
        ("GET", "/predict"), ("PUT", "/predict"), ("DELETE", "/predict"), ("PATCH", "/predict"), ("OPTIONS", "/predict"),
        ("HEAD", "/predict"), ("TRACE", "/predict"), ("FOO", "/predict"), ("POST", "/predict/"), ("POST", "/PREDICT"),
        ("POST", "//predict"), ("POST", "/predict%00"), ("POST", "/../predict"), ("POST", "/nonexistent"), ("POST", "*"),
        ("GET", "/readyz?x=%ZZ"), ("POST", "/predict?x=%ZZ"), ("POST", "http://evil.example/predict"),
    ]
]


def sweep_requests() -> list[bytes]:
    posts = [post_bytes(body, KEY, Connection="close") for body in MALFORMED_JSON + WRONG_TYPES + HUGE_NUMBERS + DEEP_NESTING]
    posts += [post_bytes(body, KEY, content_type=content_type, Connection="close") for body, content_type in BAD_MULTIPART]
    return posts + BAD_HTTP + WRONG_METHODS_AND_PATHS


def worker_pids(tag: str) -> set[int]:
    return {
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if "_bentoml_impl.worker.service" in " ".join(process.info["cmdline"] or []) and tag in " ".join(process.info["cmdline"])
    }


def outcome(reply: Reply) -> str:
    if reply.reset or reply.status is None:
        return "no answer"
    return "5xx" if reply.status >= 500 else str(reply.status)


def test_over_a_hundred_bad_requests_get_no_5xx_and_crash_nothing(request):
    port = int(request.getfixturevalue("iris_url").rsplit(":", 1)[1])  # by name: its import only registers it
    tag = str(request.getfixturevalue("iris")[1])
    requests = sweep_requests()
    assert len(set(requests)) >= 100
    workers = worker_pids(tag)
    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(lambda request: outcome(send_and_read(port, request)), requests))
    print(f"\nbad-request sweep: {len(requests)} requests, outcomes {dict(sorted(outcomes.items()))}")
    assert outcomes["5xx"] == 0 and outcomes["no answer"] == 0, outcomes
    assert send_and_read(port, post_bytes(GOOD_BODY, KEY, Connection="close")).status == 200
    assert worker_pids(tag) == workers and workers  # no worker died and was restarted
