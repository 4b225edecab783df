"""Prometheus metrics for POST /predict, on the bento's own /metrics.

The fast path answers /predict in front of BentoML's traffic-metrics middleware, so conduit counts
its requests itself: `conduit_predict_requests_total{status}` and
`conduit_predict_duration_seconds{status}` (time in the handler: auth, parse, model, envelope).
prometheus_client is what BentoML's /metrics serves from; under `bentoml serve` it runs in
multiprocess mode, so every worker's counts add up; each served revision has a multiprocess
folder of its own (PROMETHEUS_MULTIPROC_DIR, see `targets.local.bentoml_serving`), so a deployment's /metrics counts its
requests only, from its revision's start. About 1-2 us per request.
`conduit_prediction_log_records_total{outcome}` counts the prediction log's records: `written`,
`lost` (a write that failed after its retries) and `dropped` (the writer's queue was full).

Serving never depends on writing them: the multiprocess files are written through
`conduit.serving.metric_files`, which keeps a worker's counts in memory (and says so once in its
log) when the disk has no room, instead of letting a write into an unbacked page kill the worker.
"""
from __future__ import annotations

from typing import Any, Optional

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_metrics: Optional[PredictMetrics] = None


class PredictMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        from conduit.serving import metric_files

        metric_files.install()  # before this process writes its first value
        self._files = metric_files

        self._requests = Counter("conduit_predict_requests", "POST /predict requests answered", ["status"])
        self._duration = Histogram(
            "conduit_predict_duration_seconds", "Time to answer POST /predict", ["status"], buckets=DURATION_BUCKETS
        )
        self._by_status: dict[int, tuple[Any, Any]] = {}
        self._log_records = Counter(
            "conduit_prediction_log_records", "Prediction log records: written, lost (a failed write), dropped (queue full)",
            ["outcome"],
        )
        self._by_outcome: dict[str, Any] = {}

    def record(self, status: int, seconds: float) -> None:
        children = self._by_status.get(status)
        if children is None:  # label lookups cost more than the updates: once per status
            label = str(status)
            children = self._by_status[status] = (self._requests.labels(label), self._duration.labels(label))
        children[0].inc()
        children[1].observe(seconds)
        if self._files.untold is not None:  # a notice the full disk kept out of the log so far
            self._files.tell()

    def count_log_records(self, outcome: str, rows: int) -> None:
        """The prediction log's writer thread calls it (see conduit.serving.prediction_log)."""
        child = self._by_outcome.get(outcome)
        if child is None:
            child = self._by_outcome[outcome] = self._log_records.labels(outcome)
        child.inc(rows)


def predict_metrics() -> Optional[PredictMetrics]:
    """The process's metrics (a metric name registers once per process); None without prometheus_client."""
    global _metrics
    if _metrics is None:
        try:
            _metrics = PredictMetrics()
        except ImportError:
            return None
    return _metrics
