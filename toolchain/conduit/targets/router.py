"""The stable front of a local deployment: `python -m conduit.targets.router --fd N --backend-file F`.

Each deployment name keeps one endpoint (`http://127.0.0.1:<port>/predict`) across redeploys and
rollbacks. This small TCP relay holds that port and passes every new connection to the revision
named in the backend file (one line: the backend port). `apply` starts a new revision on a fresh
port, waits until it is ready, then rewrites the file (an atomic rename): new connections go to the
new revision while connections already open finish on the old one, which is then stopped.

The relay is byte-level, so requests, responses and streaming pass through unchanged. It sits in
every request's path, so it is built to cost as little as possible: two `asyncio.Protocol`s per
connection hand each chunk straight to the other side's `transport.write` from `data_received`
(no reader/writer objects, no await per chunk), on uvloop when it is installed, where that write
is a C call that usually goes to the socket at once. Flow control is the transports' own: when
one side's send buffer fills up, reading from the other side pauses until it drains. When no
revision is reachable it answers 503 in the predict contract's error shape.

Known limit: a keep-alive connection stays with the revision it was opened to. When that revision
stops after a switch, a request sent at the very moment the old server closes the idle
connection fails with a disconnect (measured: 1 in about 3,000 back-to-back keep-alive requests
per switch); requests on new connections (`model_api_request`, `conduit predict`) never failed.
Clients that keep connections open should retry on a disconnect, as with any rolling restart.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Optional

# Bytes a client may send before its backend connection is up; past this, reading pauses.
CONNECT_BUFFER = 256 * 1024
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)


class Backend:
    """The backend port from the backend file, re-read only when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: Optional[tuple[int, int]] = None
        self._port: Optional[int] = None

    def port(self) -> Optional[int]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp != self._stamp:
            self._port = int(self.path.read_text().strip() or 0) or None
            self._stamp = stamp
        return self._port


def unavailable_response(message: str) -> bytes:
    body = b'{"error": {"type": "unavailable", "message": "%s"}, "run_id": null}' % message.encode()
    return UNAVAILABLE % (len(body), body)


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Small responses leave at once instead of waiting on Nagle's algorithm (both loops usually
    set this already; it is one syscall per connection)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class Side(asyncio.Protocol):
    """One end of a relayed connection: what it receives is written to the other end."""

    def __init__(self) -> None:
        # Set by connection_made, which asyncio calls before any other callback of a protocol.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.peer: Optional[Side] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        no_delay(transport)

    def data_received(self, data: bytes) -> None:
        self.forward(data)

    def forward(self, data: bytes) -> None:
        peer = self.peer.transport  # type: ignore[union-attr]
        if not peer.is_closing():  # the other end went away: what is left has no reader
            peer.write(data)

    # This side's send buffer is full: stop reading what would be sent through it.
    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        # close() still sends what the peer's buffer holds: a response written just before the
        # server closed reaches the client.
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class ServerSide(Side):
    def eof_received(self) -> bool:
        # The server ended the exchange: the connection is over both ways.
        if self.peer is not None:
            self.peer.transport.close()
        return False


class ClientSide(Side):
    """A client connection: connects to the current backend, buffering what arrives meanwhile."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.early: list[bytes] = []
        self.early_size = 0
        self.client_done = False
        self.connecting: Optional[asyncio.Task] = None  # held: the loop keeps only a weak reference

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connecting = asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        port = self.backend.port()
        try:
            if port is None:
                raise ConnectionRefusedError("no backend recorded")
            _, server = await asyncio.get_running_loop().create_connection(ServerSide, "127.0.0.1", port)
        except OSError:
            if not self.transport.is_closing():
                self.transport.write(unavailable_response("no revision of this deployment is serving right now"))
                self.transport.close()
            return
        if self.transport.is_closing():  # the client left while we connected
            server.transport.close()
            return
        server.peer, self.peer = self, server
        for data in self.early:
            server.transport.write(data)
        if self.client_done:
            self.eof_received()
        if self.early_size > CONNECT_BUFFER:
            self.transport.resume_reading()
        self.early = []

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.forward(data)
            return
        self.early.append(data)
        self.early_size += len(data)
        if self.early_size > CONNECT_BUFFER:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        # The client finished sending; the response may still be coming: pass the half-close on.
        self.client_done = True
        server = self.peer.transport if self.peer is not None else None
        if server is not None and not server.is_closing() and server.can_write_eof():
            server.write_eof()
        return True


async def serve(listener: socket.socket, backend: Backend) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientSide(backend), sock=listener)
    async with server:
        await server.serve_forever()


def run(coroutine) -> None:
    """uvloop when installed (a conduit dependency): its transports write from C."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # private, as conduit.paths.keep_private (not imported: the router imports no conduit)
    parser = argparse.ArgumentParser(prog="conduit.targets.router")
    parser.add_argument("--fd", type=int, required=True, help="an inherited listening socket")
    parser.add_argument("--backend-file", type=Path, required=True)
    args = parser.parse_args(argv)
    listener = socket.socket(fileno=args.fd)
    print(f"[conduit router] pid {os.getpid()} on {listener.getsockname()}", flush=True)
    try:
        run(serve(listener, Backend(args.backend_file)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
