"""Start-up speed of conduit's own processes: the cyclic garbage collector while they import.

Importing BentoML and a model framework makes several hundred thousand objects that live as long
as the process. At the default threshold the collector walks all of them again every few hundred
allocations, which is 15-25% of an import-heavy start (measured here: importing scikit-learn 1.0
-> 0.8 s; a bare `bentoml serve` of iris ready in 2.32 -> 2.10 s). So a starting process collects
rarely, then freezes what start-up made (later collections, the serving pauses included, skip
it) and goes back to the usual rate. Only processes conduit starts do this; a library caller's
interpreter is left alone.
"""
from __future__ import annotations

import gc

# Collect every 50,000 net allocations instead of 700: few passes while importing, and still a
# bound on memory if a start-up does make cyclic garbage.
STARTUP_THRESHOLD = 50_000
_usual = gc.get_threshold()


def begin() -> None:
    """This process is starting: collect rarely until `settle()`."""
    gc.set_threshold(STARTUP_THRESHOLD, *_usual[1:])


def begin_in_bentoml_worker() -> bool:
    """`begin()` if this process is a BentoML server worker; whether it was. `bentoml build`, the
    arbiter and a library caller import the same service code and are left alone."""
    import bentoml  # lazy: this imports only its context, which the worker has already set

    if bentoml.server_context.worker_index is None:
        return False
    begin()
    return True


def settle() -> None:
    """Start-up is over: freeze what it made and collect at the usual rate again."""
    gc.freeze()
    gc.set_threshold(*_usual)


def before_exit() -> None:
    """A short-lived command is done: frozen objects are left out of the collection that the
    interpreter runs at exit (0.15 s after importing BentoML)."""
    gc.freeze()
