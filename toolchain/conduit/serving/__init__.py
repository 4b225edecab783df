"""The HTTP predict contract as plain Python, used by the generated BentoML service.

Importing this package imports neither BentoML nor a model framework. How a built bento is
started (its command line, environment, BentoML's private API) is the local target's
`conduit.targets.local.bentoml_serving`, which a bento does not carry.

    auth.py       API key check (sha256 digests compared in constant time)
    contract.py   request parsing and response envelopes (pure functions)
    predictor.py  the loaded Flow, called inline or on a thread, optionally through the Batcher
    handler.py    one request -> (status, body): auth, size cap, parse, predict, envelope
    asgi.py       the raw-ASGI fast path for POST /predict, in front of the BentoML app
    metrics.py    Prometheus counts and durations of /predict on the bento's /metrics
    bento.py      what a bento knows about itself (its lock file and service settings)
"""
from __future__ import annotations
