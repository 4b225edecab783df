"""Adaptive batching with real models (iris LogisticRegression, a 2-layer torch net).

Ordering is made deterministic with a gate, not with sleeps: the first model call blocks in the
worker thread until the test has queued the callers it wants merged, then is released.
"""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from conduit.errors import InputError, Overloaded
from conduit.serving.batching import Batcher, BatchResultMismatch


@pytest.fixture(scope="module")
def iris():
    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    return model, features.tolist()


def sklearn_predict(model):
    """The shape of a flow's batch call: JSON-ready rows in, one result per row out; bad rows are 422."""

    def predict(data, parameters):
        try:
            rows = np.asarray(data, dtype=float)
            return model.predict_proba(rows).tolist()
        except ValueError as exc:
            raise InputError(str(exc)) from None

    return predict


class Gate:
    """Wraps a real predict: records every call's (size, parameters) and holds the first call until released."""

    def __init__(self, predict):
        self.predict = predict
        self.calls: list[tuple[int, object]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, data, parameters):
        self.calls.append((len(data), parameters))
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(30)
        return self.predict(data, parameters)


async def hold_worker(batcher: Batcher, gate: Gate, row) -> asyncio.Future:
    """Start a first call and wait until the worker thread is inside it."""
    first = asyncio.ensure_future(batcher.submit([row]))
    await asyncio.to_thread(gate.entered.wait, 30)
    return first


async def queue_callers(batcher: Batcher, payloads, parameters=None) -> list[asyncio.Future]:
    tasks = [asyncio.ensure_future(batcher.submit(data, parameters)) for data in payloads]
    await asyncio.sleep(0)  # each task runs up to its wait: its points are queued
    return tasks


def test_concurrent_callers_are_merged_and_each_gets_its_own_results(iris):
    model, rows = iris
    gate = Gate(sklearn_predict(model))
    batcher = Batcher(gate, max_batch_size=8, max_latency_ms=50)
    payloads = [rows[0:2], rows[50:53], rows[100:103]]

    async def scenario():
        first = await hold_worker(batcher, gate, rows[10])
        tasks = await queue_callers(batcher, payloads)
        gate.release.set()
        return await first, await asyncio.gather(*tasks)

    first, results = asyncio.run(scenario())
    assert [size for size, _ in gate.calls] == [1, 8]
    assert first == model.predict_proba([rows[10]]).tolist()
    for payload, result in zip(payloads, results):
        assert np.allclose(result, model.predict_proba(payload))
    batcher.close()


def test_a_caller_larger_than_max_batch_size_is_split_in_order(iris):
    model, rows = iris
    gate = Gate(sklearn_predict(model))
    gate.entered.set()  # nothing to hold here
    batcher = Batcher(gate, max_batch_size=4, max_latency_ms=5)
    payload = rows[40:50] + rows[120:125]

    result = asyncio.run(batcher.submit(payload))

    assert [size for size, _ in gate.calls] == [4, 4, 4, 3]
    assert np.allclose(result, model.predict_proba(payload))
    batcher.close()


def test_a_bad_row_fails_only_the_caller_who_sent_it(iris):
    model, rows = iris
    gate = Gate(sklearn_predict(model))
    batcher = Batcher(gate, max_batch_size=16, max_latency_ms=50)
    good_a, bad, good_b = rows[0:3], [[5.1, 3.5, 1.4]], rows[60:62]

    async def scenario():
        first = await hold_worker(batcher, gate, rows[7])
        tasks = await queue_callers(batcher, [good_a, bad, good_b])
        gate.release.set()
        await first
        return await asyncio.gather(*tasks, return_exceptions=True)

    result_a, error, result_b = asyncio.run(scenario())
    assert isinstance(error, InputError) and error.http_status == 422
    assert np.allclose(result_a, model.predict_proba(good_a))
    assert np.allclose(result_b, model.predict_proba(good_b))
    # the merged call failed, then each caller ran alone
    assert [size for size, _ in gate.calls] == [1, 6, 3, 1, 2]
    batcher.close()


def test_only_callers_with_equal_parameters_share_a_call(iris):
    model, rows = iris
    proba = sklearn_predict(model)

    def scaled(data, parameters):
        factor = (parameters or {}).get("scale", 1)
        return [[factor * p for p in row] for row in proba(data, None)]

    gate = Gate(scaled)
    batcher = Batcher(gate, max_batch_size=32, max_latency_ms=50)

    async def scenario():
        first = await hold_worker(batcher, gate, rows[1])
        tasks = []
        for index, parameters in enumerate([{"scale": 2}, None, {"scale": 2}, {"scale": 3}, None]):
            tasks += await queue_callers(batcher, [rows[index * 10 : index * 10 + 2]], parameters)
        gate.release.set()
        await first
        return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())
    assert gate.calls[1:] == [(4, {"scale": 2}), (4, None), (2, {"scale": 3})]
    for index, factor in enumerate([2, 1, 2, 3, 1]):
        expected = factor * model.predict_proba(rows[index * 10 : index * 10 + 2])
        assert np.allclose(results[index], expected)
    batcher.close()


def test_torch_model_many_concurrent_callers(tmp_path):
    torch = pytest.importorskip("torch")

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)).eval()

    def predict(data, parameters):
        with torch.inference_mode():
            return net(torch.tensor(data, dtype=torch.float32)).tolist()

    batcher = Batcher(predict, max_batch_size=16, max_latency_ms=5, max_queued_points=10_000)
    generator = np.random.default_rng(1)
    payloads = [generator.normal(size=(int(generator.integers(1, 40)), 6)).tolist() for _ in range(60)]

    async def scenario():
        return await asyncio.gather(*(batcher.submit_timed(payload) for payload in payloads))

    timed = asyncio.run(scenario())
    for payload, (result, run_time_ms) in zip(payloads, timed):
        with torch.inference_mode():
            expected = net(torch.tensor(payload, dtype=torch.float32)).numpy()
        assert np.allclose(result, expected, atol=1e-5)
        assert run_time_ms > 0
    assert max(batcher.batch_sizes) <= 16
    total_points = sum(len(payload) for payload in payloads)
    assert sum(batcher.batch_sizes) == total_points
    # callers shared calls: fewer calls than callers' chunks
    assert len(batcher.batch_sizes) < sum(-(-len(p) // 16) for p in payloads)
    batcher.close()


def test_a_flow_that_does_not_return_one_result_per_point_is_an_error(iris):
    model, rows = iris
    batcher = Batcher(lambda data, parameters: sklearn_predict(model)(data, None)[:-1], 8, 5)
    with pytest.raises(BatchResultMismatch, match="one result per data point"):
        asyncio.run(batcher.submit(rows[:3]))
    batcher.close()


def test_a_cancelled_caller_is_never_computed(iris):
    model, rows = iris
    gate = Gate(sklearn_predict(model))
    batcher = Batcher(gate, max_batch_size=32, max_latency_ms=50)

    async def scenario():
        first = await hold_worker(batcher, gate, rows[2])
        gone, kept = await queue_callers(batcher, [rows[0:5], rows[5:7]])
        gone.cancel()
        gate.release.set()
        await first
        return await kept

    result = asyncio.run(scenario())
    assert [size for size, _ in gate.calls] == [1, 2]
    assert np.allclose(result, model.predict_proba(rows[5:7]))
    batcher.close()


def test_a_full_queue_answers_overloaded_and_keeps_the_queued(iris):
    model, rows = iris
    gate = Gate(sklearn_predict(model))
    batcher = Batcher(gate, max_batch_size=4, max_latency_ms=50, max_queued_points=4)

    async def scenario():
        first = await hold_worker(batcher, gate, rows[3])
        queued = await queue_callers(batcher, [rows[0:4]])
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(rows[4:5])
        gate.release.set()
        await first
        return refused.value, await queued[0]

    refused, result = asyncio.run(scenario())
    assert refused.http_status == 503
    assert np.allclose(result, model.predict_proba(rows[0:4]))
    batcher.close()


def test_close_fails_waiting_callers_with_overloaded(iris):
    model, rows = iris
    gate = Gate(sklearn_predict(model))
    batcher = Batcher(gate, max_batch_size=4, max_latency_ms=50)

    async def scenario():
        first = await hold_worker(batcher, gate, rows[3])
        queued = await queue_callers(batcher, [rows[0:2]])
        batcher.close()
        gate.release.set()
        return await asyncio.gather(first, *queued, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(outcome, Overloaded) for outcome in outcomes)


def test_the_same_batcher_serves_a_new_event_loop_and_lone_callers_after_merged_ones(iris):
    model, rows = iris
    batcher = Batcher(sklearn_predict(model), max_batch_size=8, max_latency_ms=20)

    async def burst_then_lone():
        burst = await asyncio.gather(*(batcher.submit([row]) for row in rows[:12]))
        lone = await batcher.submit([rows[99]])  # the last batch had company: this one waits, then runs
        return burst, lone

    for _ in range(2):
        burst, lone = asyncio.run(burst_then_lone())
        assert np.allclose([r[0] for r in burst], model.predict_proba(rows[:12]))
        assert np.allclose(lone, model.predict_proba([rows[99]]))
    assert asyncio.run(batcher.submit([])) == []
    batcher.close()
