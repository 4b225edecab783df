"""A tiny real HTTP server for the proxy and client tests (not BentoML, not a mock):
GET /readyz -> 200; any other request -> JSON with the server's name, pid, path, headers and body.

    python echo_server.py PORT NAME
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/readyz":
            self._reply(200, {"ready": True})
        else:
            self._reply(200, self._echo(b""))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(200, self._echo(body))

    def _echo(self, body: bytes) -> dict:
        return {
            "name": self.server.name,  # type: ignore[attr-defined]
            "pid": os.getpid(),
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def running_in_thread(name: str = "echo", handler: type = Handler) -> Iterator[int]:
    """Serve on a free port in a thread of this process (with `handler`, a Handler subclass); yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.name = name  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    port, name = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.name = name  # type: ignore[attr-defined]
    print(f"echo server {name} on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
