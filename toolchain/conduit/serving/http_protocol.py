"""uvicorn's httptools protocol, answering pipelined requests in order when a later one is malformed.

A client may send several requests in one write (HTTP/1.1 pipelining). uvicorn queues the valid
ones, but when the parser fails on a later one it writes its 400 at once and closes, so the
answers of the requests before it are lost (issue 16). Here the 400 waits until every request
parsed before it has been answered, and whatever arrives after the malformed bytes is ignored.

BentoML's worker builds its `uvicorn.Config` with the default `http="auto"`, which names
`uvicorn.protocols.http.auto:AutoHTTPProtocol`; `install()` points that name at this class
before the worker's server loads it (the service's `to_asgi`, which runs first).
"""
from __future__ import annotations

from collections import deque
from typing import Any, Optional


def install() -> None:
    """Make this protocol the one uvicorn's "auto" loads (where uvicorn uses httptools)."""
    from uvicorn.protocols.http import auto

    ordered = ordered_protocol()
    if ordered is not None and auto.AutoHTTPProtocol.__name__ == "HttpToolsProtocol":
        auto.AutoHTTPProtocol = ordered


def ordered_protocol() -> Optional[type]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn uses h11, which parses one request at a time
        return None

    class OrderedHttpToolsProtocol(HttpToolsProtocol):
        pending_400: Optional[str] = None
        running: Any = None  # the request whose app runs now; later ones wait in self.pipeline

        def data_received(self, data: bytes) -> None:
            if self.pending_400 is None:  # bytes after a malformed request mean nothing
                super().data_received(data)

        def send_400_response(self, msg: str) -> None:
            broken = self.cycle if self.cycle is not None and self.cycle.more_body else None
            if broken is not None and broken is not self.running:  # its body is malformed: the 400 is its answer
                self.pipeline = deque(item for item in self.pipeline if item[0] is not broken)
            if self._answered_all() or broken is self.running:
                super().send_400_response(msg)
                return
            self.pending_400 = msg
            self.flow.pause_reading()

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            self.running = cycle
            super()._start_asgi_task(cycle, app)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.pending_400 is not None and self._answered_all() and not self.transport.is_closing():
                super().send_400_response(self.pending_400)

        def _answered_all(self) -> bool:
            return not self.pipeline and (self.running is None or self.running.response_complete)

    return OrderedHttpToolsProtocol
