"""The gateway's HTTP/1.1 proxy core: accepts client connections and moves requests and responses.

The gateway decides where each request goes; this module is the mechanism under it. For every
request it parses the head (httptools, uvicorn's C parser), reads the whole body, awaits the
gateway's `handler(request)`, then either writes the gateway's own `Answer` or forwards the request
to `127.0.0.1:<port>` with the target rewritten and streams the upstream's response back.

    server = Server(handler, Limits())
    await server.serve(listener)     # forever, on a bound and listening socket (`serve(...)` is the shorthand)
    server.open_connections          # client connections open now (for /metrics)
    server.close_pool(port)          # drop the pooled upstream connections of a replica being stopped
    close_pool(port)                 # the same on every Server of this process
    # (call both on the gateway's loop)

The handler runs in the connection's task: it may await as long as it holds a request, and a
client that disconnects cancels it. `Forward.done(ok)` is called once per Forward, right after the
response's last byte went to the client's transport (or the exchange failed), before the next
request of that connection is read from the queue. A response head that is not HTTP is answered
502 and `done(False)`; a client that half-closes is taken as gone (HTTP cannot tell them apart).

Why it is shaped this way:
- It sits in every request's path on a 2-core machine, so it is `asyncio.Protocol`s (no stream
  objects, no await per chunk) and costs one task per burst of requests on a connection: a
  response body goes from the upstream's `data_received` straight to the client's `transport.write`.
  Timeouts are one timer per connection that is re-armed lazily from a deadline (a float store per
  request, not a timer per request).
- Routing is per request, not per connection: a keep-alive client's requests may go to different
  replicas. Upstream connections are pooled per port and reused across clients.
- Redeploys drop nothing: a pooled connection the upstream closed meanwhile (nothing of a response
  received) is retried once on a fresh connection; a replica that cannot be reached (refused, or
  broke before any response byte) gets `done(False)` and the handler is asked once more for another
  `Forward`. Only once response bytes reached the client does a broken upstream cost the client
  its connection.
- Overload: at `max_connections` a new connection evicts the connection idle the longest (none
  idle: the new one is closed), so a flood of idle sockets cannot lock out a real request. Heads and
  bodies must arrive within `head_timeout_s` (slowloris), idle keep-alive connections close after
  `idle_timeout_s`. A client that disconnects cancels its request's task: a held handler stops holding.
- Answers the proxy makes before closing (400, 408, 413) are followed by a short lingering close
  (half-close, discard what still arrives) so that a TCP reset does not eat them.

Imports the stdlib and httptools only (the gateway must start fast); the gateway runs it on uvloop,
where a transport's write is a C call that usually goes to the socket at once.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import os
import re
import resource
import socket
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable, Optional, Union

import httptools

log = logging.getLogger("conduit.gateway.proxy")


class Reject(Exception):
    """Answered by the proxy itself in the contract's error shape:
    {"error": {"type": type, "message": message}, "run_id": null}, with `Retry-After` when given."""

    def __init__(self, status: int, type: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.retry_after = status, type, message, retry_after


@dataclass
class Request:
    """One parsed request; the proxy has read the whole body before the handler sees it."""

    method: str
    path: str  # the request target as sent, e.g. "/v1/default/iris/predict?x=1"
    headers: list[tuple[bytes, bytes]]  # as received: names as sent, compare case-insensitively
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header, its name compared case-insensitively."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass
class Forward:
    """Send this request to 127.0.0.1:port with the target rewritten to `path`."""

    port: int
    path: str  # e.g. "/predict"
    # Called exactly once when the exchange ended: ok=False if the upstream could not be reached
    # or broke mid-way.
    done: Callable[[bool], None]


@dataclass
class Answer:
    """A response the gateway makes itself (health, metrics, its own pages)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = ()  # type: ignore[assignment]


Handler = Callable[[Request], Awaitable[Union[Forward, Answer]]]


def _max_connections_default() -> int:
    return int(os.environ.get("CONDUIT_GATEWAY_MAX_CONNECTIONS", "1024"))


@dataclass
class Limits:
    max_connections: int = field(default_factory=_max_connections_default)
    idle_timeout_s: float = 15.0  # a keep-alive connection with no request in progress closes after this
    head_timeout_s: float = 10.0  # a request's head and body must arrive within this (slowloris)
    max_head_bytes: int = 64 * 1024
    max_body_bytes: int = 32 * 1024 * 1024  # larger: 413, the body not read


# --- HTTP bytes -------------------------------------------------------------------------------

REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
# Headers that describe one hop, not the message (RFC 9110 7.6.1); Content-Length is set anew and
# Expect was answered by the proxy itself.
HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"))  # and Proxy-*
NOT_FORWARDED = HOP_BY_HOP | {b"content-length", b"expect"}
# Connection tokens that name no header (RFC 9110 7.6.1 lets a sender list more headers to drop).
CONNECTION_OPTIONS = frozenset((b"close", b"keep-alive", b"upgrade", b""))
# The same, found in a lowercased response head with one scan: most responses have none.
HOP_BY_HOP_LINE = re.compile(rb"\r\n(?:connection|keep-alive|proxy-[^:]*|te|trailer|transfer-encoding|upgrade)[ \t]*:")
CONTENT_LENGTH_LINE = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]+)")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_RESPONSE_HEAD = 256 * 1024
MAX_IDLE_PER_PORT = 256
PIPELINE_DEPTH = 16  # complete requests queued on one connection before reading from it pauses
LINGER_S = 2.0  # how long a closing connection discards what the client still sends


def error_body(type: str, message: str) -> bytes:
    return json.dumps({"error": {"type": type, "message": message}, "run_id": None}).encode()


def response_bytes(status: int, body: bytes, content_type: str, headers, keep_alive: bool, http11: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"")),
             b"Content-Type: " + content_type.encode("latin-1"), b"Content-Length: %d" % len(body)]
    lines.extend(name.encode("latin-1") + b": " + value.encode("latin-1") for name, value in headers)
    add_connection_header(lines, keep_alive, http11)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def add_connection_header(lines: list[bytes], keep_alive: bool, http11: bool) -> None:
    """HTTP/1.1 keeps a connection open unless told; HTTP/1.0 closes it unless told."""
    if not keep_alive:
        lines.append(b"Connection: close")
    elif not http11:
        lines.append(b"Connection: keep-alive")


def retry_after_headers(retry_after: float | None) -> list[tuple[str, str]]:
    # HTTP's Retry-After is whole seconds.
    return [] if retry_after is None else [("Retry-After", str(max(0, math.ceil(retry_after))))]


def upstream_request(request: Request, path: str, port: int) -> bytes:
    """The request line with the new target, the client's end-to-end headers and its body."""
    lines = [request.method.encode("latin-1") + b" " + path.encode("latin-1") + b" HTTP/1.1"]
    connection, has_host = None, False
    for name, value in request.headers:
        lower = name.lower()
        if lower in NOT_FORWARDED or lower.startswith(b"proxy-"):
            if lower == b"connection":
                connection = value
            continue
        has_host = has_host or lower == b"host"
        lines.append(name + b": " + value)
    if connection is not None:
        lines = without_connection_options(lines, connection)
    if not has_host:
        lines.append(b"Host: 127.0.0.1:%d" % port)
    lines.append(b"Content-Length: %d\r\n\r\n" % len(request.body))
    return b"\r\n".join(lines) + request.body


def without_connection_options(lines: list[bytes], connection: bytes) -> list[bytes]:
    """Drops the headers the client's Connection header names as hop-by-hop."""
    named = {token.strip().lower() for token in connection.split(b",")} - CONNECTION_OPTIONS
    if not named:
        return lines
    return lines[:1] + [line for line in lines[1:] if line.partition(b":")[0].lower() not in named]


def split_response_head(head: bytes) -> tuple[list[bytes], Optional[int], bool, bool]:
    """(head lines to relay, Content-Length, chunked, connection reusable) of an upstream's response head."""
    lower = head.lower()
    if HOP_BY_HOP_LINE.search(lower) is None:  # the usual response: relayed as it came
        length = CONTENT_LENGTH_LINE.search(lower)
        return [b"HTTP/1.1" + head[8:]], int(length[1]) if length else None, False, head.startswith(b"HTTP/1.1")
    return filtered_response_head(head.split(b"\r\n"))


def filtered_response_head(lines: list[bytes]) -> tuple[list[bytes], Optional[int], bool, bool]:
    kept = [b"HTTP/1.1" + lines[0][8:]]
    length, chunked, connection = None, False, b""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if hop_by_hop(name):
            chunked = chunked or (name == b"transfer-encoding" and b"chunked" in value.lower())
            connection = value.lower() if name == b"connection" else connection
            continue
        if name == b"content-length":
            length = int(value)
        kept.append(line)
    if chunked and length is not None:  # Transfer-Encoding wins over Content-Length (RFC 9112 6.3)
        kept = [line for line in kept if not line.lower().startswith(b"content-length")]
    reusable = b"close" not in connection and (lines[0].startswith(b"HTTP/1.1") or b"keep-alive" in connection)
    return kept, length, chunked, reusable


def hop_by_hop(lower_name: bytes) -> bool:
    return lower_name in HOP_BY_HOP or lower_name.startswith(b"proxy-")


# --- upstream side ----------------------------------------------------------------------------

# How an exchange with an upstream ended.
UNREACHED = 0  # refused, or broke before any response byte: nothing reached the client
UNREADABLE = 1  # a response head that is not HTTP: nothing reached the client
BROKEN = 2  # broke after response bytes went to the client
DONE_CLOSE = 3  # relayed whole; the client connection must close (body framed by close, or asked)
DONE = 4  # relayed whole; the client connection may stay open

# Response body framing.
NO_BODY, LENGTH, CHUNKED, UNTIL_CLOSE = range(4)


class ChunkedBody:
    """Finds where a chunked body ends (httptools parses the chunks); de-chunks into `sink` if given."""

    __slots__ = ("complete", "parser", "sink")

    def __init__(self, sink: Optional[Callable[[bytes], None]]) -> None:
        self.complete, self.sink = False, sink
        self.parser = httptools.HttpResponseParser(self)
        self.parser.feed_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")

    def on_body(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink(data)

    def on_message_complete(self) -> None:
        self.complete = True


class Upstream(asyncio.Protocol):
    """One keep-alive connection to a replica; relays one response at a time to a client."""

    # The exchange in progress, set by exchange() and as the response's head is read.
    head_request: bool
    started: bool  # a response byte arrived
    buffer: bytes  # a response head not yet whole
    mode: Optional[int]  # the response body's framing, once its head is read
    remaining: int  # LENGTH: body bytes still to relay
    chunks: ChunkedBody  # CHUNKED: where the body ends
    outcome: int  # how the exchange ends once the body is relayed whole
    reusable: bool

    def __init__(self, pool: Pool, port: int) -> None:
        self.pool, self.port = pool, port
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.client: Optional[Client] = None
        self.waiter: Optional[asyncio.Future] = None
        self.closed = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def exchange(self, data: bytes, client: Client, head_request: bool) -> asyncio.Future:
        """Sends one request; the future resolves to how the exchange ended."""
        self.client, self.head_request = client, head_request
        self.started, self.buffer, self.mode = False, b"", None
        self.waiter = self.pool.loop.create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing asked: an upstream talking out of turn is not reusable
            self.transport.close()
        elif self.mode is None:
            self.started = True
            self.head(data)
        else:
            self.body(data, b"")

    def head(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = buffer
            if len(buffer) > MAX_RESPONSE_HEAD:
                self.unreadable(f"a response head over {MAX_RESPONSE_HEAD} bytes")
            return
        self.buffer = b""
        try:
            status = int(buffer[9:12])
            if status < 200:  # an interim response (100 Continue): the client got its own already
                self.skip_interim(buffer[end + 4:])
                return
            head = self.relayed_head(status, buffer[:end])
        except ValueError:  # not a status code, or not a Content-Length
            self.unreadable("a response head that is not HTTP")
            return
        self.body(buffer[end + 4:], head)

    def unreadable(self, what: str) -> None:
        log.warning("the replica on port %d sent %s", self.port, what)
        self.finish(UNREADABLE)

    def skip_interim(self, rest: bytes) -> None:
        if rest:
            self.head(rest)

    def relayed_head(self, status: int, head: bytes) -> bytes:
        """The response head for the client: hop-by-hop headers replaced by this hop's own."""
        client = self.client
        assert client is not None  # set for the exchange in progress
        lines, length, chunked, self.reusable = split_response_head(head)
        self.choose_framing(status, length, chunked, client)
        keep_alive = client.keep_alive and self.mode != UNTIL_CLOSE and (client.http11 or self.mode != CHUNKED)
        self.outcome = DONE if keep_alive else DONE_CLOSE
        if self.mode == CHUNKED and client.http11:
            lines.append(b"Transfer-Encoding: chunked")
        add_connection_header(lines, keep_alive, client.http11)
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def choose_framing(self, status: int, length: Optional[int], chunked: bool, client: Client) -> None:
        if self.head_request or status in (204, 304):
            self.mode = NO_BODY
        elif chunked:
            self.mode = CHUNKED
            self.chunks = ChunkedBody(None if client.http11 else client.transport.write)
        elif length is not None:
            self.mode, self.remaining = LENGTH, length
        else:
            self.mode = UNTIL_CLOSE

    def body(self, data: bytes, head: bytes) -> None:
        mode = self.mode
        if mode == LENGTH:
            self.length_body(data, head)
        elif mode == CHUNKED:
            self.chunked_body(data, head)
        elif mode == UNTIL_CLOSE:
            self.write(head, data)
        else:
            self.reusable = self.reusable and not data
            self.write(head, b"")
            self.finish(self.outcome)

    def length_body(self, data: bytes, head: bytes) -> None:
        remaining = self.remaining - len(data)
        if remaining > 0:
            self.remaining = remaining
            self.write(head, data)
            return
        self.reusable = self.reusable and remaining == 0  # more than announced: not reusable
        self.write(head, data if remaining == 0 else data[:self.remaining])
        self.finish(self.outcome)

    def chunked_body(self, data: bytes, head: bytes) -> None:
        client = self.client
        assert client is not None  # set for the exchange in progress
        if client.http11:
            self.write(head, data)  # passed through as sent: the framing stays valid
        elif head:
            self.write(head, b"")
        try:
            self.chunks.parser.feed_data(data)
        except httptools.HttpParserError:
            self.reusable = False  # bytes after the last chunk, or bad chunks
            if not self.chunks.complete:
                self.finish(BROKEN)
                return
        if self.chunks.complete:
            self.finish(self.outcome)

    def write(self, head: bytes, data: bytes) -> None:
        client = self.client
        assert client is not None  # set for the exchange in progress
        transport = client.transport
        if len(data) < 16384:
            transport.write(head + data if head else data)
            return
        if head:
            transport.write(head)
        transport.write(data)

    def finish(self, outcome: int) -> None:
        waiter, self.waiter, self.client = self.waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)
        if outcome >= DONE_CLOSE and self.reusable and not self.closed:
            self.resume()
            self.pool.release(self)
        else:
            self.close()

    def abandon(self) -> None:
        """The client went away mid-exchange: what is left of the response has no reader."""
        self.waiter = self.client = None
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        return False  # the upstream is done sending: the connection ends (connection_lost follows)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.waiter is None:
            return
        if self.mode == UNTIL_CLOSE:
            self.finish(DONE_CLOSE)
        elif self.mode is not None:
            self.finish(BROKEN)
        elif self.started:
            self.unreadable("half a response head and closed the connection")
        else:
            self.finish(UNREACHED)


class Pool:
    """Idle keep-alive upstream connections per port, reused across requests and clients."""

    def __init__(self) -> None:
        self.idle: dict[int, list[Upstream]] = {}
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by Server.serve

    async def exchange(self, port: int, data: bytes, client: Client, head_request: bool) -> int:
        """Relays one request; a pooled connection found closed is retried once on a fresh one."""
        upstream = self.take(port)
        if upstream is not None:
            outcome = await self.relay(upstream, data, client, head_request)
            if outcome != UNREACHED:
                return outcome
        try:
            _, upstream = await self.loop.create_connection(lambda: Upstream(self, port), "127.0.0.1", port)
        except OSError:
            return UNREACHED
        return await self.relay(upstream, data, client, head_request)

    async def relay(self, upstream: Upstream, data: bytes, client: Client, head_request: bool) -> int:
        client.upstream = upstream
        try:
            return await upstream.exchange(data, client, head_request)
        except asyncio.CancelledError:
            upstream.abandon()
            raise
        finally:
            client.upstream = None

    def take(self, port: int) -> Optional[Upstream]:
        idle = self.idle.get(port)
        while idle:
            upstream = idle.pop()  # the most recently used: the least likely to have been closed
            if not upstream.closed:
                return upstream
        return None

    def release(self, upstream: Upstream) -> None:
        idle = self.idle.setdefault(upstream.port, [])
        if len(idle) < MAX_IDLE_PER_PORT:
            idle.append(upstream)
        else:
            upstream.close()

    def forget(self, upstream: Upstream) -> None:
        idle = self.idle.get(upstream.port)
        if idle and upstream in idle:
            idle.remove(upstream)

    def close(self, port: int) -> None:
        for upstream in self.idle.pop(port, []):
            upstream.close()


# --- client side ------------------------------------------------------------------------------


class Stop(Exception):
    """Raised from a parser callback to stop reading a request the proxy refuses."""


class Pending:
    """A complete request waiting its turn on its connection, or a refusal answered in order."""

    __slots__ = ("http11", "keep_alive", "refusal", "request")

    def __init__(self, request: Optional[Request], keep_alive: bool, http11: bool, refusal=None) -> None:
        self.request, self.keep_alive, self.http11, self.refusal = request, keep_alive, http11, refusal


class Client(asyncio.Protocol):
    """One client connection: parses requests in order and serves them one at a time."""

    # The request being read, set by on_message_begin.
    head_seen: int  # head bytes received
    url: list[bytes]
    headers: list[tuple[bytes, bytes]]
    body: list[bytes]
    body_size: int
    deadline: float  # loop time at which the current wait (head and body, or idle) runs out

    def __init__(self, server: Server) -> None:
        self.server, self.limits, self.loop = server, server.limits, server.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.parser = httptools.HttpRequestParser(self)
        self.queue: collections.deque[Pending] = collections.deque()
        self.task: Optional[asyncio.Task] = None
        self.upstream: Optional[Upstream] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.reading = self.in_head = self.closing = self.discarding = self.paused = False
        self.keep_alive, self.http11 = True, True  # of the request being answered

    # connection events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.server.admit(self):
            self.wait(self.limits.idle_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return  # past a refusal, or lingering after a final answer: nothing more is parsed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.ignore_upgrade(data[upgrade.args[0]:])
            return
        except httptools.HttpParserCallbackError as error:
            if not isinstance(error.__context__, Stop):
                raise
            return
        except httptools.HttpParserError:
            self.refuse(400, "bad_request", "malformed HTTP request; send HTTP/1.1 with a JSON body")
            return
        if self.in_head:
            self.head_seen += len(data)
            if self.head_seen > self.limits.max_head_bytes:
                self.refuse(431, "bad_request", f"the request head is over {self.limits.max_head_bytes} bytes")

    def ignore_upgrade(self, rest: bytes) -> None:
        """Upgrades (h2c, websockets) are not offered: the request is served as HTTP/1.1."""
        self.parser = httptools.HttpRequestParser(self)
        if rest:
            self.data_received(rest)

    def eof_received(self) -> bool:
        # A client that stops sending has gone, as far as HTTP can tell (a half-close is not told
        # apart from a close): the connection ends, and a request in progress is cancelled.
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closing = True
        self.server.forget(self)
        if self.timer is not None:
            self.timer.cancel()
        if self.upstream is not None:
            self.upstream.abandon()  # at once: the rest of its response must not be written here
        if self.task is not None:
            self.task.cancel()  # a held handler stops holding; an upstream exchange is abandoned

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume()

    # parser callbacks (httptools)

    def on_message_begin(self) -> None:
        self.reading = self.in_head = True
        self.head_seen, self.url, self.headers, self.body, self.body_size = 0, [], [], [], 0
        self.server.idle.pop(self, None)
        self.deadline = self.loop.time() + self.limits.head_timeout_s

    def on_url(self, url: bytes) -> None:
        self.url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        for name, value in self.headers:
            name = name.lower()
            if name == b"content-length" and value.isdigit() and int(value) > self.limits.max_body_bytes:
                self.refuse_too_large()
            elif name == b"expect" and value.lower() == b"100-continue" and self.task is None and not self.queue:
                self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.limits.max_body_bytes:
            self.refuse_too_large()
        self.body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        request = Request(parser.get_method().decode("latin-1"), b"".join(self.url).decode("latin-1"),
                          self.headers, b"".join(self.body))
        self.reading = False
        self.enqueue(Pending(request, parser.should_keep_alive(), parser.get_http_version() == "1.1"))

    # serving requests in order

    def enqueue(self, pending: Pending) -> None:
        self.queue.append(pending)
        if len(self.queue) >= PIPELINE_DEPTH and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        if self.task is None:
            self.task = self.loop.create_task(self.work())

    async def work(self) -> None:
        try:
            while self.queue and not self.closing:
                pending = self.queue.popleft()
                if self.paused and len(self.queue) < PIPELINE_DEPTH // 2:
                    self.paused = False
                    self.transport.resume_reading()
                if not await self.serve(pending):
                    self.linger()
        finally:
            self.task = None
        self.after_work()

    def after_work(self) -> None:
        if self.closing:
            return
        if self.reading:
            self.wait(self.limits.head_timeout_s)  # a pipelined request's clock starts now
        else:
            self.server.idle[self] = None
            self.wait(self.limits.idle_timeout_s)

    async def serve(self, pending: Pending) -> bool:
        """Answers one request; False when the connection must close after it."""
        self.keep_alive, self.http11 = pending.keep_alive, pending.http11
        request = pending.request
        if request is None:  # a refusal answered in order
            self.send_error(*pending.refusal)
            return False
        try:
            return await self.route(request)
        except Reject as reject:
            return self.send_error(reject.status, reject.type, reject.message, reject.retry_after)
        except Exception:
            log.exception("the gateway's handler failed on %s %s", request.method, request.path)
            return self.send_error(500, "internal_error", "the gateway failed on this request; see its log")

    async def route(self, request: Request) -> bool:
        handler = self.server.handler
        for _ in range(2):  # a replica that cannot be reached: the handler picks again, once
            target = await handler(request)
            if not isinstance(target, Forward):
                return self.send_answer(target)
            outcome = await self.forward(request, target)
            if outcome == UNREADABLE:
                return self.send_error(502, "unavailable", "the replica's response was not HTTP; see the gateway's log")
            if outcome != UNREACHED:
                return outcome == DONE
        return self.send_error(502, "unavailable", "no replica of this deployment could be reached; try again")

    async def forward(self, request: Request, target: Forward) -> int:
        outcome = UNREACHED
        try:
            data = upstream_request(request, target.path, target.port)
            outcome = await self.server.pool.exchange(target.port, data, self, request.method == "HEAD")
            return outcome
        finally:
            call_done(target, outcome >= DONE_CLOSE)

    def send_answer(self, answer: Answer) -> bool:
        self.write(response_bytes(answer.status, answer.body, answer.content_type, answer.headers,
                                  self.keep_alive, self.http11))
        return self.keep_alive

    def send_error(self, status: int, type: str, message: str, retry_after: float | None = None) -> bool:
        self.write(response_bytes(status, error_body(type, message), "application/json",
                                  retry_after_headers(retry_after), self.keep_alive, self.http11))
        return self.keep_alive

    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    # refusing and closing

    def refuse_too_large(self) -> None:
        self.refuse(413, "payload_too_large", f"the request body is over {self.limits.max_body_bytes} bytes; send less per request")
        raise Stop()

    def refuse(self, status: int, type: str, message: str) -> None:
        """Answers after the requests before it, then closes; nothing more is read."""
        self.reading = self.in_head = False
        self.discarding = True
        self.enqueue(Pending(None, False, True, (status, type, message)))

    def linger(self) -> None:
        """Closes after what was written: half-close, discard what still arrives, then close."""
        if self.closing:
            return
        self.closing = self.discarding = True
        self.server.forget(self)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if self.paused:
            self.transport.resume_reading()
        self.wait(LINGER_S, sooner=True)

    # Timeouts: one timer per connection that fires at least every `step` seconds and compares the
    # time with `deadline`, so that a request moves the deadline with a float store, not a new timer.

    def wait(self, seconds: float, sooner: bool = False) -> None:
        now = self.loop.time()
        self.deadline = now + seconds
        if self.timer is not None and sooner:
            self.timer.cancel()
            self.timer = None
        if self.timer is None:
            self.arm(now)

    def arm(self, now: float) -> None:
        self.timer = self.loop.call_at(min(self.deadline, now + self.server.timer_step), self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        if self.task is not None and not self.closing:
            return  # serving: no clock runs (after_work sets the next one)
        now = self.loop.time()
        if now < self.deadline:
            self.arm(now)
        elif self.reading and not self.closing:
            self.refuse(408, "request_timeout", f"the request did not arrive within {self.limits.head_timeout_s:g} s")
        else:
            self.transport.close()  # idle for too long, or done lingering


def call_done(target: Forward, ok: bool) -> None:
    try:
        target.done(ok)
    except Exception:
        log.exception("a Forward's done callback failed")


# --- the server -------------------------------------------------------------------------------

_servers: weakref.WeakSet[Server] = weakref.WeakSet()


class Server:
    """Client connections of one listening socket, the upstream pool, and the connection cap."""

    def __init__(self, handler: Handler, limits: Optional[Limits] = None) -> None:
        self.handler, self.limits = handler, limits or Limits()
        self.connections: dict[Client, None] = {}
        self.idle: dict[Client, None] = {}  # connections with nothing in progress, the longest idle first
        self.pool = Pool()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by serve
        # No deadline is nearer than this when it is set: a timer this often never fires late.
        self.timer_step = min(self.limits.idle_timeout_s, self.limits.head_timeout_s)
        _servers.add(self)

    @property
    def open_connections(self) -> int:
        return len(self.connections)

    def close_pool(self, port: int) -> None:
        self.pool.close(port)

    async def serve(self, listener: socket.socket) -> None:
        """Serves forever on an already bound and listening socket."""
        raise_open_files_limit()
        self.loop = self.pool.loop = asyncio.get_running_loop()
        server = await self.loop.create_server(lambda: Client(self), sock=listener, backlog=1024)
        async with server:
            await server.serve_forever()

    def admit(self, client: Client) -> bool:
        """At the cap, the connection idle the longest makes room; none idle: the newcomer is closed."""
        if len(self.connections) >= self.limits.max_connections:
            if not self.idle:
                client.closing = True
                client.transport.close()
                return False
            oldest = next(iter(self.idle))
            self.forget(oldest)
            oldest.closing = True
            oldest.transport.close()
        self.connections[client] = None
        self.idle[client] = None
        return True

    def forget(self, client: Client) -> None:
        self.connections.pop(client, None)
        self.idle.pop(client, None)


async def serve(listener: socket.socket, handler: Handler, limits: Optional[Limits] = None) -> None:
    """Serve forever on an already bound+listening socket."""
    await Server(handler, limits).serve(listener)


def close_pool(port: int) -> None:
    """Drops the pooled upstream connections to `port` on every Server of this process."""
    for server in list(_servers):
        server.close_pool(port)


def raise_open_files_limit() -> None:
    """Many client connections need many descriptors: the soft limit goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass

