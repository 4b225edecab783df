"""The live charts' numbers, from a real prediction log: requests per bucket (a request of many
data points counts once), nearest-rank latency percentiles, 4xx and 5xx, only inside the window."""
from __future__ import annotations

from conduit.dashboard import charts
from conduit.serving import prediction_log

NOW = 1_800_000_000.0  # a bucket boundary: the last bucket is [NOW - 15, NOW)


def log_requests(name: str, requests: list[tuple[str, float, float, int, int]]) -> None:
    """(run_id, arrived, latency_ms, status, points) rows into the deployment's real log."""
    connection = prediction_log.connect(prediction_log.database_path(name))
    for run_id, arrived, latency_ms, status, points in requests:
        for point in range(points):
            row = (arrived, name, 1, status, run_id, f"{run_id}-{point}", point, 1.0, latency_ms, "[1]", "2", None, None)
            connection.execute(prediction_log.INSERT, row)
    connection.close()


def test_a_bucket_counts_requests_percentiles_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    last = NOW - 10
    log_requests("charted", [
        ("a", last, 10.0, 200, 3),  # three data points, one request
        ("b", last + 1, 20.0, 422, 1),
        ("c", last + 2, 30.0, 500, 1),
        ("d", last + 3, 40.0, 200, 1),
        ("old", NOW - charts.WINDOW_S - 60, 99.0, 500, 1),  # before the window
    ])
    series = charts.series("charted", now=NOW - 0.5)
    assert len(series["times"]) == charts.WINDOW_S // charts.BUCKET_S and series["times"][-1] == NOW - charts.BUCKET_S
    assert series["rate"][-1] == round(4 / charts.BUCKET_S, 3) and sum(series["rate"][:-1]) == 0
    assert (series["p50"][-1], series["p95"][-1], series["p99"][-1]) == (20.0, 40.0, 40.0)
    assert (series["errors_4xx"][-1], series["errors_5xx"][-1]) == (1, 1)
    assert sum(series["errors_5xx"]) == 1 and series["p50"][0] is None


def test_no_log_yet_gives_empty_buckets(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    series = charts.series("never-called", now=NOW)
    assert set(series["rate"]) == {0.0} and set(series["p99"]) == {None}


def test_percentile_is_nearest_rank():
    ordered = [float(n) for n in range(1, 101)]
    assert [charts.percentile(ordered, share) for share in (50, 95, 99)] == [50.0, 95.0, 99.0]
    assert charts.percentile([7.0], 99) == 7.0 and charts.percentile([], 50) is None
