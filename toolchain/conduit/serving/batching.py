"""Adaptive batching: concurrent callers' data points merged into one model call.

`Batcher(predict, max_batch_size, max_latency_ms)` wraps the flow's synchronous batch call
`predict(data, parameters) -> list` (one result per data point). `await batcher.submit(data,
parameters)` queues one caller's points and returns exactly that caller's results, in order.

Decisions (each one is tested in tests/serving/test_batching.py):

- One worker thread runs every model call, so the event loop keeps accepting requests while the
  model runs, and callers that arrive meanwhile form the next batch.
- Only callers with equal `parameters` share a model call (parameters apply to the whole call).
- A caller with more than `max_batch_size` points is split into chunks of at most
  `max_batch_size`: the bound exists to cap memory (a GPU's, mostly), so no call exceeds it.
  Chunks run in order; the caller's results are the chunks' results joined.
- When a merged call raises, each caller in it is retried alone, so a bad row (an `InputError`,
  422) fails only the caller who sent it; the others get their results. A call that returns a
  different number of results than it was given points fails the same way: batching is only
  sound for flows whose output is one item per data point.
- When to dispatch, while the worker is idle: at once if the last batch held a single caller
  (sequential traffic gains nothing by waiting); otherwise when the batch is full, when its
  oldest caller has waited `max_latency_ms`, or when callers stop arriving: no new caller for
  `LINGER_GAPS` times the recent mean gap between arrivals. While the worker is busy, callers
  simply queue; a batch never waits past `max_latency_ms` for company.
- Callers whose request was cancelled (the client went away) are dropped before their turn.
- More than `max_queued_points` points waiting is an `Overloaded` (503) for the newcomer.

Ships inside every bento: standard library only, Python 3.9 syntax.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from conduit.errors import ConduitError, Overloaded

PredictFn = Callable[[list, Optional[dict]], list]

# A batch stops waiting once no caller has arrived for this many recent mean arrival gaps.
LINGER_GAPS = 3.0
# Weight of the newest batch in the running mean of arrival gaps.
GAP_SMOOTHING = 0.2
DEFAULT_QUEUE_BATCHES = 64


class BatchResultMismatch(ConduitError):
    """The flow returned a different number of results than data points: batching cannot split it."""

    type = "batching_error"


@dataclass
class _Caller:
    parameters: Optional[dict]
    future: asyncio.Future
    arrival: float
    parts: list = field(default_factory=list)
    parts_left: int = 0
    run_time_ms: float = 0.0


@dataclass
class _Chunk:
    """Part of one caller's data points (all of them, unless the caller was split)."""

    caller: _Caller
    index: int
    points: list


@dataclass
class _Outcome:
    results: Optional[list] = None
    error: Optional[BaseException] = None
    run_time_ms: float = 0.0


class Batcher:
    def __init__(
        self,
        predict: PredictFn,
        max_batch_size: int,
        max_latency_ms: float,
        max_queued_points: Optional[int] = None,
    ) -> None:
        if max_batch_size < 1 or max_latency_ms <= 0:
            raise ValueError("max_batch_size must be >= 1 and max_latency_ms > 0")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000.0
        self.max_queued_points = max_queued_points or DEFAULT_QUEUE_BATCHES * max_batch_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conduit-batch")
        # The loop and its wake-up event are made per event loop by the first call on it (see below).
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._queue: deque = deque()
        self._queued_points = 0
        self._wake: asyncio.Event = None  # type: ignore[assignment]
        self._collector: Optional[asyncio.Task] = None
        self._in_flight: list = []
        self._last_arrival = 0.0
        self._last_batch_callers = 1
        self._mean_gap_s = 0.0
        self.batch_sizes: deque = deque(maxlen=1024)  # points per model call, newest last

    async def submit(self, data: list, parameters: Optional[dict] = None) -> list:
        """This caller's results, one per data point, in order."""
        results, _ = await self.submit_timed(data, parameters)
        return results

    async def submit_timed(self, data: list, parameters: Optional[dict] = None) -> tuple[list, float]:
        """`submit`, plus the model time (ms) of the calls this caller's points rode in."""
        points = list(data)
        if not points:
            return [], 0.0
        self._bind_to_running_loop()
        if self._queued_points + len(points) > self.max_queued_points:
            raise Overloaded(f"batch queue is full ({self._queued_points} data points waiting); retry shortly")
        caller = self._enqueue(points, parameters)
        return await caller.future

    def close(self) -> None:
        """Fail whoever is still waiting and stop the worker thread."""
        if self._collector is not None:
            self._collector.cancel()
        stopping = Overloaded("the service is shutting down")
        self._deliver(self._in_flight, [_Outcome(error=stopping)] * len(self._in_flight))
        self._fail_queued(stopping)
        self._executor.shutdown(wait=False)

    # -- queueing (event loop) -------------------------------------------------------------

    def _bind_to_running_loop(self) -> None:
        """Queue state belongs to one event loop; a new loop (a new test, a restarted worker) starts afresh."""
        loop = asyncio.get_running_loop()
        if loop is self._loop and self._collector is not None and not self._collector.done():
            return
        self._loop = loop
        self._queue.clear()
        self._queued_points = 0
        self._wake = asyncio.Event()
        self._collector = loop.create_task(self._collect_forever())

    def _enqueue(self, points: list, parameters: Optional[dict]) -> _Caller:
        now = time.monotonic()
        caller = _Caller(parameters, self._loop.create_future(), now)
        for index, start in enumerate(range(0, len(points), self.max_batch_size)):
            self._queue.append(_Chunk(caller, index, points[start : start + self.max_batch_size]))
        caller.parts_left = index + 1
        caller.parts = [None] * caller.parts_left
        self._queued_points += len(points)
        self._last_arrival = now
        self._wake.set()
        return caller

    def _fail_queued(self, error: BaseException) -> None:
        for chunk in self._queue:
            if not chunk.caller.future.done():
                chunk.caller.future.set_exception(error)
        self._queue.clear()
        self._queued_points = 0

    async def _collect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = self._in_flight = await self._next_batch()
            try:
                outcomes = await loop.run_in_executor(self._executor, self._run, batch, batch[0].caller.parameters)
            except Exception as error:  # noqa: BLE001 the executor itself failed (shut down): nobody may hang
                outcomes = [_Outcome(error=error)] * len(batch)
            self._deliver(batch, outcomes)
            self._in_flight = []

    async def _next_batch(self) -> list:
        while True:
            self._drop_abandoned()
            if self._queue:
                break
            self._wake.clear()
            await self._wake.wait()
        head = self._queue[0]
        deadline = head.caller.arrival + self.max_latency_s
        batch, full = self._select(head.caller.parameters)
        while not full:
            wait_until = min(deadline, self._last_arrival + self._linger_s())
            remaining = wait_until - time.monotonic()
            if remaining <= 0 or not await self._woken_within(remaining):
                break
            batch, full = self._select(head.caller.parameters)
        self._take(batch)
        return batch

    def _linger_s(self) -> float:
        if self._last_batch_callers <= 1:
            return 0.0
        return LINGER_GAPS * self._mean_gap_s

    async def _woken_within(self, seconds: float) -> bool:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    def _select(self, parameters: Optional[dict]) -> tuple[list, bool]:
        """Queued chunks (oldest first) with these parameters that fit one call; and whether it is full."""
        batch: list = []
        size = 0
        for chunk in self._queue:
            if chunk.caller.parameters != parameters or chunk.caller.future.done():
                continue
            if size + len(chunk.points) > self.max_batch_size:
                return batch, True
            batch.append(chunk)
            size += len(chunk.points)
        return batch, size >= self.max_batch_size

    def _take(self, batch: list) -> None:
        chosen = {id(chunk) for chunk in batch}
        self._queue = deque(chunk for chunk in self._queue if id(chunk) not in chosen)
        self._queued_points -= sum(len(chunk.points) for chunk in batch)
        self._learn_arrivals(batch)

    def _drop_abandoned(self) -> None:
        while self._queue and self._queue[0].caller.future.done():
            self._queued_points -= len(self._queue.popleft().points)

    def _learn_arrivals(self, batch: list) -> None:
        arrivals = sorted({id(chunk.caller): chunk.caller.arrival for chunk in batch}.values())
        self._last_batch_callers = len(arrivals)
        if len(arrivals) > 1:
            gap = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
            self._mean_gap_s += GAP_SMOOTHING * (gap - self._mean_gap_s)

    def _deliver(self, batch: list, outcomes: list) -> None:
        for chunk, outcome in zip(batch, outcomes):
            caller = chunk.caller
            if caller.future.done():
                continue
            if outcome.error is not None:
                caller.future.set_exception(outcome.error)
                continue
            caller.parts[chunk.index] = outcome.results
            caller.run_time_ms += outcome.run_time_ms
            caller.parts_left -= 1
            if caller.parts_left == 0:
                joined = [result for part in caller.parts for result in part]
                caller.future.set_result((joined, caller.run_time_ms))

    # -- model calls (worker thread) --------------------------------------------------------

    def _run(self, batch: list, parameters: Optional[dict]) -> list:
        """One outcome per chunk. A failed merged call is retried chunk by chunk, so an error
        reaches only the callers whose points cause it."""
        points = [point for chunk in batch for point in chunk.points]
        started = time.perf_counter()
        try:
            results = self._call(points, parameters)
        except Exception as error:  # noqa: BLE001 (each caller gets its own error, split below)
            if len(batch) == 1:
                return [_Outcome(error=error)]
            return [self._run([chunk], parameters)[0] for chunk in batch]
        run_time_ms = (time.perf_counter() - started) * 1000.0
        self.batch_sizes.append(len(points))
        return list(self._split(batch, results, run_time_ms))

    def _call(self, points: list, parameters: Optional[dict]) -> list:
        results = self._predict(points, parameters)
        if len(results) != len(points):
            raise BatchResultMismatch(
                f"the flow returned {len(results)} results for {len(points)} data points; "
                "adaptive batching needs one result per data point (turn batching off for this flow)"
            )
        return list(results)

    @staticmethod
    def _split(batch: list, results: list, run_time_ms: float) -> Any:
        start = 0
        for chunk in batch:
            stop = start + len(chunk.points)
            yield _Outcome(results=results[start:stop], run_time_ms=run_time_ms)
            start = stop
