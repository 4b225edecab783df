"""The model side of a request: the Flow, loaded once per worker process, and how it is called.

A fast model (iris: tens of microseconds) is called right on the event loop, because a thread hop
costs more than the model. A slow one runs on a worker thread so the loop keeps accepting requests.
Which is which is learned from the measured time per data point, not guessed per framework.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from functools import partial
from typing import Any, Callable, Optional

from conduit.errors import ConduitError
from conduit.serving.contract import PredictRequest

# Longest a model call may block the event loop: beyond this, it goes to a thread.
INLINE_BUDGET_MS = 2.0


class PredictTimeout(ConduitError):
    """A model call off the event loop took longer than the deployment's timeout."""

    http_status = 504
    type = "timeout"


class CallPolicy:
    """Learns the model's time per data point (moving average) and says whether to call inline."""

    def __init__(self, inline_budget_ms: float = INLINE_BUDGET_MS, smoothing: float = 0.2) -> None:
        self.inline_budget_ms = inline_budget_ms
        self.smoothing = smoothing
        self.ms_per_point: Optional[float] = None  # unknown until the first call: use a thread

    def inline(self, points: int) -> bool:
        return self.ms_per_point is not None and self.ms_per_point * max(points, 1) <= self.inline_budget_ms

    def record(self, points: int, elapsed_ms: float) -> None:
        sample = elapsed_ms / max(points, 1)
        if self.ms_per_point is None:
            self.ms_per_point = sample
        else:
            self.ms_per_point += self.smoothing * (sample - self.ms_per_point)


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - start) * 1000.0


def make_batcher(predict: Callable[..., list], batching: Any) -> Any:
    """The adaptive Batcher when the manifest asks for batching and the module is present."""
    if batching is None:
        return None
    try:
        from conduit.serving.batching import Batcher
    except ImportError:  # batching ships separately; without it every request is its own call
        return None
    return Batcher(predict, batching.max_batch_size, batching.max_latency_ms)


class Predictor:
    def __init__(
        self, flow: Any, batching: Any = None, policy: Optional[CallPolicy] = None, timeout_s: Optional[float] = None
    ) -> None:
        self.flow = flow
        self.policy = policy or CallPolicy()
        self.batcher = make_batcher(self._predict_batch, batching)
        # Bounds the wait for calls off the loop (a thread, the batcher); an inline call is
        # short by construction. The thread itself cannot be stopped: the caller is answered.
        self.timeout_s = timeout_s

    @classmethod
    def for_manifest(cls, manifest: Any, timeout_s: Optional[float] = None) -> Predictor:
        from conduit.runtimes.flow import Flow

        return cls(Flow.load(manifest), manifest.batching, timeout_s=timeout_s)

    def _predict_batch(self, data: list, parameters: Optional[dict] = None) -> list:
        return self.flow.predict(data, parameters=parameters)

    async def predict(self, request: PredictRequest, inputs: Optional[list] = None) -> tuple[list, float]:
        """(result, model time in ms: the batch's run, not the wait for it). Files bypass the
        batcher: they belong to one request. `inputs` gets the pre hook's rows (see Flow.predict),
        except in a batch, whose rows are several requests'."""
        if self.batcher is not None and not request.files:
            return await self._bounded(self.batcher.submit_timed(request.data, request.parameters))
        call = partial(self.flow.predict, request.data, parameters=request.parameters, files=request.files or None, inputs=inputs)
        points = len(request.data) if request.data is not None else 1  # files only: the pre hook makes the rows
        if self.policy.inline(points):
            result, elapsed_ms = _timed(call)
        else:
            result, elapsed_ms = await self._bounded(asyncio.get_running_loop().run_in_executor(None, _timed, call))
        self.policy.record(len(result), elapsed_ms)
        return result, elapsed_ms

    async def _bounded(self, waitable: Awaitable[Any]) -> Any:
        if not self.timeout_s:
            return await waitable
        try:
            return await asyncio.wait_for(waitable, self.timeout_s)
        except asyncio.TimeoutError:
            raise PredictTimeout(f"the model did not answer within {self.timeout_s:g} s") from None
