"""A raw-socket HTTP/1.1 client for tests that need what httpx will not do: answers read while
the body is still being sent, pipelined requests in one write, malformed request lines."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Optional

import orjson

READ_TIMEOUT_S = 30.0


@dataclass
class Reply:
    status: Optional[int]  # None: nothing parseable came back
    headers: dict[str, str]
    body: bytes
    reset: bool = False  # the connection was reset (the kernel dropped what had not been read)

    def json(self):
        return orjson.loads(self.body)


def request_head(method: str = "POST", path: str = "/predict", headers: Optional[dict] = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post_bytes(body: bytes, key: Optional[str], content_type: str = "application/json", **headers: str) -> bytes:
    """A whole POST /predict request: head and body."""
    fields = {"Content-Type": content_type, "Content-Length": str(len(body)), **headers}
    if key is not None:
        fields["Authorization"] = key
    return request_head(headers=fields) + body


def exchange(port: int, *writes: bytes, pause_s: float = 0.0) -> bytes:
    """Send `writes` (pausing between them), then read until the server closes; raises
    ConnectionResetError when the server resets the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as sock:
        for index, data in enumerate(writes):
            if index and pause_s:
                time.sleep(pause_s)
            sock.sendall(data)
        return read_to_end(sock)


def read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def send_and_read(port: int, *writes: bytes, pause_s: float = 0.0) -> Reply:
    """`exchange`, with the first response parsed (a reset is a Reply too, with `reset` set)."""
    try:
        return parse_replies(exchange(port, *writes, pause_s=pause_s))[0]
    except ConnectionResetError:
        return Reply(None, {}, b"", reset=True)
    except IndexError:
        return Reply(None, {}, b"")


def parse_replies(data: bytes) -> list[Reply]:
    """Every complete response in `data` (responses with a Content-Length, as conduit sends)."""
    replies = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
        length = int(headers.get("content-length", len(rest)))
        if len(rest) < length:  # the last one, cut short (or a HEAD's, which has no body)
            replies.append(Reply(int(status_line.split()[1]), headers, rest))
            break
        replies.append(Reply(int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return replies
