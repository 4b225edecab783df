"""The prediction log's writer on its own: rows per data point, sampling, payloads off, retention,
private files, and a failed write that is counted instead of raised. Real SQLite files in tmp."""
from __future__ import annotations

import random
import sqlite3
import stat
import time

import pytest

from conduit.manifest import PredictionLog as Settings
from conduit.serving import prediction_log
from conduit.serving.prediction_log import Exchange, PredictionLog, connect, disk_bytes, used_bytes, wal_bytes


def answered(points: int = 2, run_id: str = "run-1", arrived: float | None = None) -> Exchange:
    arrived = time.time() if arrived is None else arrived
    data = [[float(i), 1.0] for i in range(points)]
    return Exchange(run_id, arrived, data, [[0.1 * i] for i in range(points)], [f"id-{run_id}-{i}" for i in range(points)], 1.5)


def failed(status_type: str = "invalid_input", data=None) -> Exchange:
    return Exchange("run-e", time.time(), data, error={"type": status_type, "message": "expected shape [N, 4]"})


def log_at(tmp_path, counted=None, **settings) -> PredictionLog:
    return PredictionLog(tmp_path / "predictions" / "demo.db", "demo", 3, Settings(**settings), counted=counted)


def stored(log: PredictionLog, columns: str = "*") -> list[tuple]:
    with sqlite3.connect(log.path) as connection:
        return connection.execute(f"SELECT {columns} FROM predictions ORDER BY rowid").fetchall()


def test_an_answered_request_is_one_record_per_data_point_with_its_input_and_output(tmp_path):
    log = log_at(tmp_path)
    log.record(answered(points=2), 200, 0.004)
    assert log.flush() == 2
    assert stored(log, "deployment, revision, status, run_id, prediction_id, point, run_time_ms, latency_ms, input, output") == [
        ("demo", 3, 200, "run-1", "id-run-1-0", 0, 1.5, 4.0, "[0.0,1.0]", "[0.0]"),
        ("demo", 3, 200, "run-1", "id-run-1-1", 1, 1.5, 4.0, "[1.0,1.0]", "[0.1]"),
    ]


def test_an_error_is_one_record_with_its_type_message_and_input(tmp_path):
    log = log_at(tmp_path)
    log.record(failed(data=[[1]]), 422, 0.001)
    log.flush()
    assert stored(log, "status, prediction_id, input, output, error_type, error_message") == [
        (422, None, "[[1]]", None, "invalid_input", "expected shape [N, 4]")
    ]


def test_payloads_off_keeps_ids_timings_and_status_only(tmp_path):
    log = log_at(tmp_path, payloads=False)
    log.record(answered(points=1), 200, 0.002)
    log.record(failed(data=[[1]]), 422, 0.001)
    log.flush()
    assert stored(log, "status, prediction_id, latency_ms, input, output, error_type") == [
        (200, "id-run-1-0", 2.0, None, None, None),
        (422, None, 1.0, None, None, "invalid_input"),
    ]


def test_a_sample_of_zero_records_nothing_and_a_half_about_half(tmp_path):
    nothing = log_at(tmp_path, sample=0.0)
    nothing.record(answered(), 200, 0.001)
    assert nothing.flush() == 0 and not nothing.pending
    random.seed(14)
    half = log_at(tmp_path / "half", sample=0.5)
    for number in range(1000):
        half.record(answered(points=1, run_id=str(number)), 200, 0.001)
    assert 400 < half.flush() < 600


def test_the_writer_deletes_records_older_than_the_retention(tmp_path):
    log = log_at(tmp_path, retention_days=2)
    day = 86400.0
    log.record(answered(points=1, run_id="old", arrived=time.time() - 2.5 * day), 200, 0.001)
    log.record(answered(points=1, run_id="new", arrived=time.time() - 1.5 * day), 200, 0.001)
    log.flush()
    assert stored(log, "run_id") == [("new",)]
    log.record(answered(points=1, run_id="newer"), 200, 0.001)
    log.flush()
    assert log.prune(now=time.time() + day) == 1  # a day later, "new" is past the retention
    assert stored(log, "run_id") == [("newer",)]


def test_a_log_over_max_mb_loses_its_oldest_records_until_it_fits(tmp_path):
    log = log_at(tmp_path, max_mb=1)
    for number in range(12):  # 12 x 200 points of ~600 bytes of payload: several MB
        exchange = answered(points=200, run_id=f"r{number:02d}")
        exchange.result = [["x" * 500] for _ in range(200)]
        log.record(exchange, 200, 0.001)
        log.flush()
    assert log.prune() > 0
    with sqlite3.connect(log.path) as connection:
        assert used_bytes(connection) <= 1024 * 1024
    kept = [run for (run,) in stored(log, "DISTINCT run_id")]
    assert kept and kept[-1] == "r11" and "r00" not in kept


def test_the_database_and_its_folder_are_private_to_their_owner(tmp_path):
    log = log_at(tmp_path)
    log.record(answered(), 200, 0.001)
    log.flush()
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700
    for path in log.path.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_failed_write_is_counted_and_said_once_never_raised(tmp_path, caplog):
    log = log_at(tmp_path)
    log.path.parent.mkdir()
    log.path.mkdir()  # a folder where the database should be: every write fails
    for _ in range(2):
        log.record(answered(points=2), 200, 0.001)
        assert log.flush() == 0
    assert log.failed == 4
    assert [r.getMessage() for r in caplog.records].count(next(r.getMessage() for r in caplog.records)) == 1
    assert "prediction log: writing" in caplog.records[0].getMessage()


def test_the_writer_thread_flushes_on_its_own_and_close_writes_the_rest(tmp_path):
    log = log_at(tmp_path)
    log.flush_interval_s = 0.05
    log.start()
    log.record(answered(points=1, run_id="early"), 200, 0.001)
    from targets.conftest import wait_for

    wait_for(lambda: log.written == 1, timeout_s=30)
    log.record(answered(points=1, run_id="late"), 200, 0.001)
    log.close()
    assert [run for (run,) in stored(log, "run_id")] == ["early", "late"]


def test_writers_in_two_connections_share_one_database(tmp_path):
    first, second = log_at(tmp_path), log_at(tmp_path)
    first.record(answered(points=1, run_id="a"), 200, 0.001)
    second.record(answered(points=1, run_id="b"), 200, 0.001)
    reader = connect(first.path)
    reader.execute("BEGIN")  # a reader in the middle of a transaction does not block writers (WAL)
    reader.execute("SELECT count(*) FROM predictions").fetchone()
    assert first.flush() == 1 and second.flush() == 1
    reader.rollback()
    assert sorted(run for (run,) in stored(first, "run_id")) == ["a", "b"]


@pytest.mark.parametrize("field, value", [("sample", 1.5), ("retention_days", 0), ("max_mb", 0)])
def test_settings_out_of_range_are_refused(field, value):
    with pytest.raises(ValueError):
        Settings(**{field: value})


def test_a_big_request_is_written_in_short_transactions_so_other_writers_get_their_turn(tmp_path):
    counts: list[tuple[str, int]] = []
    log = log_at(tmp_path, counted=lambda outcome, rows: counts.append((outcome, rows)))
    log.record(answered(points=1200), 200, 0.01)
    assert log.flush() == 1200
    assert counts == [("written", 500), ("written", 500), ("written", 200)]  # one transaction each


def test_a_write_that_finds_the_database_locked_is_retried_not_dropped(tmp_path, monkeypatch, caplog):
    log = log_at(tmp_path)
    log.record(answered(points=1, run_id="first"), 200, 0.001)
    log.flush()
    holder = sqlite3.connect(log.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another worker in the middle of a long write
    monkeypatch.setattr(prediction_log, "BUSY_TIMEOUT_S", 0.05)
    log.close()  # the next write connects again, with the short busy timeout
    real_locked = prediction_log.locked

    def released_after_the_first_try(exc):
        holder.rollback()  # the other worker commits while this one waits to retry
        return real_locked(exc)

    monkeypatch.setattr(prediction_log, "locked", released_after_the_first_try)
    log.record(answered(points=2, run_id="second"), 200, 0.001)
    assert log.flush() == 2
    assert (log.failed, [run for (run,) in stored(log, "run_id")]) == (0, ["first", "second", "second"])
    assert not caplog.records


def test_a_data_points_payload_over_16_kib_is_cut_to_a_marker(tmp_path):
    log = log_at(tmp_path)
    exchange = answered(points=2)
    exchange.data[1] = ["x" * 20_000]
    log.record(exchange, 200, 0.001)
    log.flush()
    assert stored(log, "input") == [("[0.0,1.0]",), ('"[cut: 20004 bytes of JSON, over the 16384 a record keeps]"',)]


def big_requests(log: PredictionLog, requests: int, points: int, prefix: str = "r") -> None:
    for number in range(requests):
        exchange = answered(points=points, run_id=f"{prefix}{number:02d}")
        exchange.result = [["x" * 500] for _ in range(points)]
        log.record(exchange, 200, 0.001)
        log.flush()
        assert disk_bytes(log.path) <= log.max_bytes, number  # the database and its WAL together


def test_the_database_and_its_wal_together_stay_within_max_mb(tmp_path):
    log = log_at(tmp_path, max_mb=1)
    big_requests(log, requests=12, points=200)
    big_requests(log, requests=1, points=6000, prefix="huge")  # one request of about 4 MB on its own
    assert wal_bytes(log.path) <= log.max_bytes // 4
    assert stored(log, "DISTINCT run_id") == [("huge00",)]  # the newest request's last points
    assert stored(log, "max(point)") == [(5999,)]


def test_the_size_cap_evicts_by_answer_time_not_by_write_order(tmp_path):
    """A big request's rows reach the database after later requests' rows (it is written over many
    flushes): when the cap evicts, the later requests must outlive the older big one."""
    log = log_at(tmp_path, max_mb=1)
    started = time.time()
    later = answered(points=3, run_id="later", arrived=started + 5)
    log.record(later, 200, 0.001)
    log.flush()  # written first, answered last
    big = answered(points=6000, run_id="big", arrived=started)
    big.result = [["x" * 500] for _ in range(6000)]
    log.record(big, 200, 0.001)
    log.flush()
    assert ("later",) in stored(log, "DISTINCT run_id")
    assert disk_bytes(log.path) <= log.max_bytes


def test_a_log_written_before_auto_vacuum_gives_its_pages_back_too(tmp_path):
    log = log_at(tmp_path, max_mb=1)
    log.path.parent.mkdir()
    with sqlite3.connect(log.path) as connection:  # as the first version of the writer made it
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(prediction_log.SCHEMA)
    big_requests(log, requests=8, points=200)
    assert log.path.stat().st_size <= log.max_bytes


def test_a_files_only_request_records_the_rows_the_pre_hook_returned(tmp_path):
    np = pytest.importorskip("numpy")
    log = log_at(tmp_path)
    files_only = Exchange("run-f", time.time(), None, [[0.9], [0.1]], ["p-0", "p-1"], 1.0, inputs=np.array([[1.5, 2.0], [3.0, 4.5]]))
    log.record(files_only, 200, 0.001)
    log.flush()
    assert stored(log, "input") == [("[1.5,2.0]",), ("[3.0,4.5]",)]


def test_a_pre_hook_that_returns_a_data_frame_records_its_rows(tmp_path):
    pandas = pytest.importorskip("pandas")
    log = log_at(tmp_path)
    frame = pandas.DataFrame({"a": [1.5, 3.0], "b": [2.0, 4.5]})
    log.record(Exchange("run-d", time.time(), None, [[0.9], [0.1]], ["p-0", "p-1"], 1.0, inputs=frame), 200, 0.001)
    log.flush()
    assert stored(log, "input") == [("[1.5,2.0]",), ("[3.0,4.5]",)]


def test_requests_dropped_when_the_queue_is_full_are_counted_and_said_once(tmp_path, monkeypatch, caplog):
    counts: list[tuple[str, int]] = []
    log = log_at(tmp_path, counted=lambda outcome, rows: counts.append((outcome, rows)))
    monkeypatch.setattr(prediction_log, "MAX_PENDING", 1)
    for number in range(3):
        log.record(answered(points=1, run_id=str(number)), 200, 0.001)
    assert (log.dropped, counts) == (2, [("dropped", 1), ("dropped", 1)])
    assert [r.getMessage() for r in caplog.records] == [
        f"prediction log: 1 requests are waiting to be written to {log.path}; requests are still answered, "
        "the records of new ones are dropped and counted until it catches up"
    ]


def test_rows_a_failed_write_lost_are_counted_for_the_metrics(tmp_path):
    counts: list[tuple[str, int]] = []
    log = log_at(tmp_path, counted=lambda outcome, rows: counts.append((outcome, rows)))
    log.path.parent.mkdir()
    log.path.mkdir()
    log.record(answered(points=3), 200, 0.001)
    log.flush()
    assert counts == [("lost", 3)]
