"""The gateway's proxy core (conduit.targets.local.proxy) on real sockets: `serve` runs in a thread
with its own uvloop loop, upstreams are small real HTTP servers (echo_server.py), clients are
http.client or raw sockets where the bytes on the wire are the point."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import echo_server
import pytest

from conduit.targets.local import proxy
from conftest import closed_by_peer

uvloop = pytest.importorskip("uvloop")

BIG = 5 * 1024 * 1024
WAIT_S = 20.0  # a bound on waiting for something that must happen, never a measured threshold


def big_body() -> bytes:
    return bytes(range(256)) * (BIG // 256)


class Upstream(echo_server.Handler):
    """The echo server, also naming the connection (the proxy's side of it) and serving big bodies."""

    def _echo(self, body: bytes) -> dict:
        return {**super()._echo(body), "peer": self.client_address[1]}

    def do_GET(self) -> None:
        if self.path == "/big":
            self._send_big(chunked=False)
        elif self.path == "/big-chunked":
            self._send_big(chunked=True)
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1234")
        self.end_headers()

    def _send_big(self, chunked: bool) -> None:
        body = big_body()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding" if chunked else "Content-Length", "chunked" if chunked else str(len(body)))
        self.end_headers()
        if not chunked:
            self.wfile.write(body)
            return
        for start in range(0, len(body), 100_000):
            piece = body[start:start + 100_000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


class AnswersOnce(Upstream):
    """Answers the first request on each connection, then closes the connection without an answer
    when the next one arrives: a server closing an idle keep-alive connection just as a request came."""

    def handle(self) -> None:
        self.handle_one_request()
        self.rfile.readline()


class SpeaksNoHTTP(Upstream):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")


class RunningProxy:
    """proxy.Server serving in a thread of its own, on its own uvloop loop."""

    def __init__(self, handler: proxy.Handler, limits: proxy.Limits) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.server = proxy.Server(handler, limits)
        self.loop = uvloop.new_event_loop()
        self.task = self.loop.create_task(self.server.serve(self.listener))
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self.task)
        self.loop.close()  # and with it the connections still open

    def call(self, function: Callable, *args) -> None:
        self.loop.call_soon_threadsafe(function, *args)

    def stop(self) -> None:
        self.call(self.task.cancel)
        self.thread.join(WAIT_S)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)

    def raw(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S)


@pytest.fixture
def start_proxy():
    """start_proxy(handler, **limits) -> a RunningProxy, stopped after the test."""
    started: list[RunningProxy] = []

    def start(handler: proxy.Handler, **limits) -> RunningProxy:
        running = RunningProxy(handler, proxy.Limits(**limits))
        running.thread.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def upstream_a():
    with echo_server.running_in_thread("A", Upstream) as port:
        yield port


@pytest.fixture
def upstream_b():
    with echo_server.running_in_thread("B", Upstream) as port:
        yield port


def forward_to(port: int, path: str = "/predict", done: Callable[[bool], None] = lambda ok: None) -> proxy.Handler:
    async def handler(request: proxy.Request) -> proxy.Forward:
        return proxy.Forward(port, path, done)

    return handler


def post(connection: http.client.HTTPConnection, path: str = "/v1/default/iris/predict", body=b"[[1, 2]]",
         headers: dict | None = None, **options) -> tuple[int, dict, dict]:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})}, **options)
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), json.loads(response.read())


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def recv_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length, read off a raw socket: (head, body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().partition(b"content-length: ")[2].partition(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def error(type: str, message: str) -> dict:
    return {"error": {"type": type, "message": message}, "run_id": None}


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.01)


def wait_until_listening(port: int) -> None:
    def listening() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    wait_until(listening)


# --- forwarding -------------------------------------------------------------------------------


def test_a_keep_alive_client_is_routed_per_request(start_proxy, upstream_a, upstream_b):
    calls: list[str] = []

    async def alternate(request: proxy.Request) -> proxy.Forward:
        calls.append(request.path)
        port = upstream_a if len(calls) % 2 else upstream_b
        return proxy.Forward(port, "/predict?" + request.path.partition("?")[2], lambda ok: None)

    running = start_proxy(alternate)
    connection = running.connection()
    answers = [post(connection, f"/v1/default/iris/predict?n={n}", body=b"[[%d]]" % n) for n in range(10)]
    assert [document["name"] for _, _, document in answers] == ["A", "B"] * 5
    assert [document["path"] for _, _, document in answers] == [f"/predict?n={n}" for n in range(10)]
    assert [document["body"] for _, _, document in answers] == [f"[[{n}]]" for n in range(10)]
    assert calls == [f"/v1/default/iris/predict?n={n}" for n in range(10)]
    assert connection.sock is not None  # the same client connection served all ten


def test_upstream_connections_are_pooled_across_clients_and_dropped_by_close_pool(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    first = post(running.connection())[2]["peer"]
    second = post(running.connection())[2]["peer"]
    assert second == first
    running.call(running.server.close_pool, upstream_a)
    assert post(running.connection())[2]["peer"] != first


def test_hop_by_hop_headers_are_not_forwarded(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    headers = {"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "TE": "trailers",
               "Proxy-Authorization": "Basic eA==", "Authorization": "Bearer key-1", "X-End": "2"}
    _, _, document = post(running.connection(), headers=headers)
    seen = document["headers"]
    assert seen["x-end"] == "2" and seen["authorization"] == "Bearer key-1"
    assert {"connection", "x-hop", "keep-alive", "te", "proxy-authorization"}.isdisjoint(seen)


def test_a_chunked_request_is_forwarded_with_a_content_length(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    status, _, document = post(running.connection(), body=iter([b"[[1, ", b"2]]"]), encode_chunked=True)
    assert status == 200
    assert document["body"] == "[[1, 2]]"
    assert document["headers"]["content-length"] == "8"
    assert "transfer-encoding" not in document["headers"]


def test_pipelined_requests_are_answered_in_order(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    sock = running.raw()
    requests = [b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[[%d]]" % n for n in range(3)]
    sock.sendall(b"".join(requests) + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    received = read_until_closed(sock)
    assert received.count(b"HTTP/1.1 200 OK") == 4
    bodies = [received.index(b'"body": "[[%d]]"' % n) for n in range(3)]
    assert bodies == sorted(bodies)


def test_a_large_response_streams_intact(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a, "/big"))
    connection = running.connection()
    connection.request("GET", "/anything")
    response = connection.getresponse()
    assert response.getheader("Content-Length") == str(BIG)
    assert hashlib.sha256(response.read()).digest() == hashlib.sha256(big_body()).digest()


def test_a_chunked_response_streams_intact_to_http11_and_http10_clients(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a, "/big-chunked"))
    connection = running.connection()
    for _ in range(2):  # the connection stays usable after a chunked response
        connection.request("GET", "/anything")
        response = connection.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == big_body()
    sock = running.raw()
    sock.sendall(b"GET /anything HTTP/1.0\r\n\r\n")
    head, _, body = read_until_closed(sock).partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and b"Connection: close" in head
    assert body == big_body()


def test_a_head_request_gets_no_body(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    connection = running.connection()
    connection.request("HEAD", "/x")
    response = connection.getresponse()
    assert (response.status, response.getheader("Content-Length"), response.read()) == (200, "1234", b"")
    assert post(connection)[0] == 200  # the next request on the same connection is intact


def test_http10_and_connection_close_are_honoured(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    for request in (b"GET /x HTTP/1.0\r\n\r\n", b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
        sock = running.raw()
        sock.sendall(request)
        received = read_until_closed(sock)  # the proxy closes after one answer
        assert received.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in received
        assert received.count(b"HTTP/1.1") == 1


def test_http10_keep_alive_is_honoured(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    sock = running.raw()
    sock.sendall(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head, _ = recv_response(sock)
    assert b"Connection: keep-alive" in head
    sock.sendall(b"GET /x HTTP/1.0\r\n\r\n")
    assert b"HTTP/1.1 200 OK" in read_until_closed(sock)


def test_expect_100_continue_is_answered(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    sock = running.raw()
    sock.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"[[7]]")
    head, body = recv_response(sock)
    assert head.startswith(b"HTTP/1.1 200 OK")
    document = json.loads(body)
    assert document["body"] == "[[7]]" and "expect" not in document["headers"]


# --- answers the proxy makes itself -----------------------------------------------------------


def test_an_answer_is_written_by_the_proxy(start_proxy):
    async def health(request: proxy.Request) -> proxy.Answer:
        return proxy.Answer(200, b"ok\n", "text/plain", [("X-Gateway", "1")])

    connection = start_proxy(health).connection()
    for _ in range(2):
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert (response.status, response.getheader("Content-Type"), response.getheader("X-Gateway")) == (200, "text/plain", "1")
        assert response.read() == b"ok\n"


def test_a_reject_is_answered_in_the_contract_shape(start_proxy):
    async def starting(request: proxy.Request) -> proxy.Forward:
        raise proxy.Reject(503, "unavailable", "iris is starting; retry shortly", retry_after=1.5)

    connection = start_proxy(starting).connection()
    status, headers, document = post(connection)
    assert (status, headers["Retry-After"], headers["Content-Type"]) == (503, "2", "application/json")
    assert document == error("unavailable", "iris is starting; retry shortly")
    assert post(connection)[0] == 503  # the connection stays open


def test_a_body_over_the_limit_is_answered_413_and_the_connection_closed(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a), max_body_bytes=1000)
    expected = error("payload_too_large", "the request body is over 1000 bytes; send less per request")
    status, headers, document = post(running.connection(), body=b"x" * 5000)
    assert (status, headers["Connection"], document) == (413, "close", expected)
    status, _, document = post(running.connection(), body=iter([b"x" * 600] * 3), encode_chunked=True)
    assert (status, document) == (413, expected)
    assert post(running.connection(), body=b"x" * 1000)[0] == 200


def test_a_malformed_request_is_answered_400_and_the_connection_closed(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a))
    sock = running.raw()
    sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    received = read_until_closed(sock)
    first, _, rest = received.partition(b"HTTP/1.1 400 Bad Request")
    assert first.startswith(b"HTTP/1.1 200 OK")  # the request before it was answered first
    body = rest.partition(b"\r\n\r\n")[2]
    assert json.loads(body) == error("bad_request", "malformed HTTP request; send HTTP/1.1 with a JSON body")


def test_a_handler_failure_is_answered_500(start_proxy):
    async def broken(request: proxy.Request) -> proxy.Forward:
        raise RuntimeError("bug")

    status, _, document = post(start_proxy(broken).connection())
    assert (status, document) == (500, error("internal_error", "the gateway failed on this request; see its log"))


# --- upstreams going away ---------------------------------------------------------------------


def test_a_pooled_connection_the_upstream_closed_is_retried_transparently(start_proxy):
    outcomes: list[bool] = []
    with echo_server.running_in_thread("once", AnswersOnce) as port:
        running = start_proxy(forward_to(port, done=outcomes.append))
        connection = running.connection()
        answers = [post(connection)[0] for _ in range(10)]
    assert answers == [200] * 10
    wait_until(lambda: len(outcomes) == 10)  # done() follows the response's last byte
    assert outcomes == [True] * 10  # one handler call per request: the retry was the proxy's own


def test_an_upstream_killed_between_requests_costs_the_client_nothing(start_proxy, upstream_b):
    port = free_port()
    killed = subprocess.Popen([sys.executable, str(Path(echo_server.__file__)), str(port), "A"],
                              stdout=subprocess.DEVNULL)
    outcomes: list[bool] = []
    try:
        wait_until_listening(port)

        async def first_a_then_b(request: proxy.Request) -> proxy.Forward:
            return proxy.Forward(upstream_b if False in outcomes else port, "/predict", outcomes.append)

        connection = start_proxy(first_a_then_b).connection()
        before = [post(connection)[2]["name"] for _ in range(5)]
        killed.kill()
        killed.wait(WAIT_S)
        after = [post(connection)[2]["name"] for _ in range(5)]
    finally:
        killed.kill()
    assert (before, after) == (["A"] * 5, ["B"] * 5)
    wait_until(lambda: len(outcomes) == 11)
    assert outcomes == [True] * 5 + [False] + [True] * 5  # the handler was asked again once


def test_a_refused_connection_asks_the_handler_again(start_proxy, upstream_a):
    outcomes: list[tuple[int, bool]] = []
    nothing_there = free_port()

    async def dead_then_alive(request: proxy.Request) -> proxy.Forward:
        port = upstream_a if outcomes else nothing_there
        return proxy.Forward(port, "/predict", lambda ok: outcomes.append((port, ok)))

    status, _, document = post(start_proxy(dead_then_alive).connection())
    assert (status, document["name"]) == (200, "A")
    wait_until(lambda: len(outcomes) == 2)
    assert outcomes == [(nothing_there, False), (upstream_a, True)]


def test_two_unreachable_replicas_are_answered_502(start_proxy):
    outcomes: list[bool] = []
    running = start_proxy(forward_to(free_port(), done=outcomes.append))
    status, _, document = post(running.connection())
    assert (status, document) == (502, error("unavailable", "no replica of this deployment could be reached; try again"))
    assert outcomes == [False, False]


def test_a_response_that_is_not_http_is_answered_502(start_proxy):
    outcomes: list[bool] = []
    with echo_server.running_in_thread("garbage", SpeaksNoHTTP) as port:
        status, _, document = post(start_proxy(forward_to(port, done=outcomes.append)).connection())
    assert (status, document) == (502, error("unavailable", "the replica's response was not HTTP; see the gateway's log"))
    assert outcomes == [False]


# --- connections: cap, timeouts, disconnects --------------------------------------------------


@contextlib.contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) for _ in range(count)]
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_a_flood_of_idle_connections_does_not_lock_out_a_request(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a), max_connections=50)
    with idle_sockets(running.port, 200) as flood:
        # Socket 149 is evicted when socket 199 is admitted: then the whole flood has been accepted.
        wait_until(lambda: running.server.open_connections == 50 and closed_by_peer(flood[149]))
        assert post(running.connection())[0] == 200
        assert running.server.open_connections <= 50
        evicted = sum(map(closed_by_peer, flood))
    assert evicted >= 150  # the oldest idle ones made room


def test_a_busy_connection_is_not_evicted(start_proxy, upstream_a):
    entered, release = threading.Event(), asyncio.Event()

    async def hold(request: proxy.Request) -> proxy.Forward:
        entered.set()
        await release.wait()
        return proxy.Forward(upstream_a, "/predict", lambda ok: None)

    running = start_proxy(hold, max_connections=3)
    held = running.connection()
    held.request("POST", "/p", body=b"[[1]]")
    assert entered.wait(WAIT_S)
    with idle_sockets(running.port, 10) as flood:
        wait_until(lambda: sum(map(closed_by_peer, flood)) >= 8)  # newcomers evict each other, never the held one
        running.call(release.set)
        assert held.getresponse().status == 200


def test_an_idle_keep_alive_connection_is_closed(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a), idle_timeout_s=0.2)
    sock = running.raw()
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    received = read_until_closed(sock)  # returns only once the proxy closed the idle connection
    assert received.startswith(b"HTTP/1.1 200 OK") and received.count(b"HTTP/1.1") == 1
    wait_until(lambda: running.server.open_connections == 0)


def test_a_head_that_does_not_arrive_in_time_is_answered_408(start_proxy, upstream_a):
    # The idle timeout is past the socket's: a head clock that waited for it would fail the read.
    running = start_proxy(forward_to(upstream_a), head_timeout_s=0.2, idle_timeout_s=3 * WAIT_S)
    sock = running.raw()
    sock.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Le")
    head, _, body = read_until_closed(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout") and b"Connection: close" in head
    assert json.loads(body) == error("request_timeout", "the request did not arrive within 0.2 s")


def test_a_head_over_the_limit_is_refused(start_proxy, upstream_a):
    running = start_proxy(forward_to(upstream_a), max_head_bytes=4096)
    sock = running.raw()
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192)
    assert read_until_closed(sock).startswith(b"HTTP/1.1 431 Request Header Fields Too Large")


def test_a_client_disconnect_cancels_its_held_handler(start_proxy):
    entered, cancelled = threading.Event(), threading.Event()

    async def hold_forever(request: proxy.Request) -> proxy.Forward:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    running = start_proxy(hold_forever)
    sock = running.raw()
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert entered.wait(WAIT_S)
    sock.close()
    assert cancelled.wait(WAIT_S)


def test_a_client_disconnect_mid_response_reports_the_exchange_failed(start_proxy, upstream_a):
    outcomes: list[bool] = []
    running = start_proxy(forward_to(upstream_a, "/big", done=outcomes.append))
    sock = running.raw()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
    sock.close()
    wait_until(lambda: outcomes == [False])
    assert post(running.connection())[0] == 200  # the upstream is still reachable through the proxy
