"""The HTTP predict contract as plain Python, used by the generated BentoML service.

Importing this package imports neither BentoML nor a model framework: the local target and the
CLI use `serve_command` / `serve_env` from here to start a built bento.

    auth.py       API key check (sha256 digests compared in constant time)
    contract.py   request parsing and response envelopes (pure functions)
    predictor.py  the loaded Flow, called inline or on a thread, optionally through the Batcher
    handler.py    one request -> (status, body): auth, size cap, parse, predict, envelope
    asgi.py       the raw-ASGI fast path for POST /predict, in front of the BentoML app
    metrics.py    Prometheus counts and durations of /predict on the bento's /metrics
    bento.py      what a bento knows about itself (its lock file and service settings)
    process.py    how to serve a built bento: the command line and its environment, and the
                  one place that uses BentoML's private API (arbiter sockets, metrics folder)
"""
from __future__ import annotations

from conduit.serving.process import API_KEY_SHA256_ENV, serve_command, serve_env

__all__ = ["API_KEY_SHA256_ENV", "serve_command", "serve_env"]
