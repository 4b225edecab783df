"""conduit.startup: a starting process collects rarely, then settles; nobody else's interpreter
is touched."""
from __future__ import annotations

import gc

from conduit import startup
from conduit.serving import service
from conduit.serving.service import ServiceRuntime


def test_begin_collects_rarely_and_settle_restores_the_usual_rate():
    usual = gc.get_threshold()
    try:
        startup.begin()
        assert gc.get_threshold()[0] == startup.STARTUP_THRESHOLD
        startup.settle()
        assert gc.get_threshold() == usual
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*usual)
        gc.unfreeze()


def test_the_service_runtime_leaves_a_non_worker_process_alone(tmp_path):
    usual = gc.get_threshold()
    ServiceRuntime(tmp_path, max_body_bytes=1024, max_concurrency=1)  # as `bentoml build` does
    assert gc.get_threshold() == usual
    assert service.STARTING_WORKER is False
