"""The prediction log on real revisions served by the local target: every answer a replica gives
(200 and each error status; a wrong key or too big a body is refused by the gateway first) leaves
its records, which outlive a redeploy, a graceful stop and a kill -9 of a worker (all but its last
unflushed batch); under concurrent load recorded equals answered; the manifest's `prediction_log`
turns payloads off."""
from __future__ import annotations

import os
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from conduit.serving.prediction_log import database_path
from conduit.targets import local
from conftest import TEST_KEY, metrics_url, replicas_of, wait_for
from serving.trained import iris_folder

KEY = {"Authorization": TEST_KEY}
POINT = [5.1, 3.5, 1.4, 0.2]

pytestmark = pytest.mark.e2e


def records(name: str, where: str = "1", columns: str = "*") -> list[tuple]:
    path = database_path(name)
    if not path.is_file():
        return []
    with sqlite3.connect(path, timeout=10) as connection:
        return connection.execute(f"SELECT {columns} FROM predictions WHERE {where} ORDER BY rowid").fetchall()


def recorded(name: str, run_ids) -> set[str]:
    found = {run for (run,) in records(name, columns="DISTINCT run_id")}
    return found & set(run_ids)


@pytest.fixture(scope="module")
def served(conduit_home, tmp_path_factory):
    deployment = local.apply(iris_folder(tmp_path_factory.mktemp("logged"), name="logged"))
    yield deployment
    local.delete("logged", progress=lambda _: None)


def test_answers_and_every_error_status_leave_records(served):
    post = lambda **kw: httpx.post(served.endpoint, timeout=60, **kw)  # noqa: E731
    answers = {
        200: post(json=[POINT, [6.0, 3.0, 5.0, 2.0]], headers=KEY),
        400: post(content=b"[[1", headers=KEY),
        401: post(json=[POINT]),
        413: post(content=b"[" + b"1," * (17 * 1024 * 1024) + b"1]", headers=KEY),
        422: post(json=[[1.0]], headers=KEY),
        500: post(json=["explode"], headers=KEY),  # the pre hook raises
    }
    assert {status: answer.status_code for status, answer in answers.items()} == {s: s for s in answers}
    runs = {status: answer.json()["run_id"] for status, answer in answers.items()}
    # A body over the size cap is refused by the gateway before any replica reads it: no record.
    # A missing key goes on to the ready replica, which records its 401.
    logged = {status: run for status, run in runs.items() if status != 413}
    wait_for(lambda: len(recorded("logged", logged.values())) == len(logged))

    ok = records("logged", f"run_id = '{runs[200]}'", "prediction_id, point, input, output, revision, status, run_time_ms")
    assert [row[0] for row in ok] == answers[200].json()["prediction_ids"]
    assert [(row[1], row[2]) for row in ok] == [(0, "[5.1,3.5,1.4,0.2]"), (1, "[6.0,3.0,5.0,2.0]")]
    assert [row[3] for row in ok] == [repr_json(item) for item in answers[200].json()["result"]]
    assert {row[4:6] for row in ok} == {(1, 200)} and all(row[6] > 0 for row in ok)
    for status in (400, 422, 500):
        (row,) = records("logged", f"run_id = '{runs[status]}'", "status, prediction_id, error_type, error_message, input")
        error = answers[status].json()["error"]
        assert row[:4] == (status, None, error["type"], error["message"])
    assert [answers[status].json()["error"]["type"] for status in (401, 413)] == ["unauthorized", "payload_too_large"]


def repr_json(value) -> str:
    import orjson

    return orjson.dumps(value).decode()


def test_a_files_only_request_records_the_rows_the_pre_hook_made_of_them(served):
    table = b"5.1,3.5,1.4,0.2\n6.0,3.0,5.0,2.0\n"
    answer = httpx.post(served.endpoint, files={"table": ("rows.csv", table, "text/csv")}, headers=KEY, timeout=60)
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["run_id"]
    wait_for(lambda: len(records("logged", f"run_id = '{run_id}'")) == 2)
    assert records("logged", f"run_id = '{run_id}'", "input") == [("[5.1,3.5,1.4,0.2]",), ("[6.0,3.0,5.0,2.0]",)]


def test_the_records_written_are_counted_on_the_deployments_metrics(served):
    answered = [httpx.post(served.endpoint, json=[POINT, POINT], headers=KEY, timeout=60).json()["run_id"] for _ in range(3)]
    wait_for(lambda: len(recorded("logged", answered)) == 3)
    metrics = httpx.get(metrics_url(served.endpoint), timeout=60).text
    (written,) = [line for line in metrics.splitlines() if line.startswith('conduit_prediction_log_records_total{outcome="written"}')]
    assert float(written.split()[-1]) >= 6


def test_under_concurrent_load_recorded_equals_answered(served):
    def client(_: int) -> list[str]:
        with httpx.Client(timeout=60, headers=KEY) as session:
            return [session.post(served.endpoint, json=[POINT]).json()["run_id"] for _ in range(50)]

    with ThreadPoolExecutor(32) as pool:
        answered = [run for runs in pool.map(client, range(32)) for run in runs]
    assert len(set(answered)) == 32 * 50
    wait_for(lambda: len(recorded("logged", answered)) == len(answered))
    placeholders = ",".join("?" * len(answered))
    with sqlite3.connect(database_path("logged")) as connection:
        rows = connection.execute(f"SELECT count(*) FROM predictions WHERE run_id IN ({placeholders})", answered).fetchone()[0]
    assert rows == len(answered)  # one record each: none twice


def test_a_worker_killed_outright_loses_at_most_its_last_unflushed_batch(served):
    flushed = [httpx.post(served.endpoint, json=[POINT], headers=KEY, timeout=60).json()["run_id"] for _ in range(20)]
    wait_for(lambda: len(recorded("logged", flushed)) == len(flushed))
    # After the load above there may be two replicas: one of them loses a worker (and so stops).
    replica = wait_for(lambda: [row for row in replicas_of("logged") if row["state"] == "ready"])[0]
    (worker,) = psutil.Process(replica["pid"]).children()  # the replica's one worker, under its leader
    unflushed = [httpx.post(served.endpoint, json=[POINT], headers=KEY, timeout=60).json()["run_id"] for _ in range(5)]
    os.kill(worker.pid, signal.SIGKILL)
    wait_for(lambda: httpx.post(served.endpoint, json=[POINT], headers=KEY, timeout=60).status_code == 200)
    assert recorded("logged", flushed) == set(flushed)  # what was committed survives the crash
    assert len(recorded("logged", unflushed)) <= len(unflushed)


def test_a_graceful_stop_writes_what_was_queued(conduit_home, tmp_path):
    deployment = local.apply(iris_folder(tmp_path, name="stopped"))
    answered = [httpx.post(deployment.endpoint, json=[POINT], headers=KEY, timeout=60).json()["run_id"] for _ in range(30)]
    local.delete("stopped", progress=lambda _: None)  # right away: the last ones are still queued
    assert recorded("stopped", answered) == set(answered)


def test_records_outlive_a_redeploy_and_a_rollback_and_name_their_revision(conduit_home, tmp_path):
    def predict(endpoint: str) -> str:
        return httpx.post(endpoint, json=[POINT], headers=KEY, timeout=60).json()["run_id"]

    first = local.apply(iris_folder(tmp_path, name="redeployed"))
    try:
        runs = [predict(first.endpoint)]
        second = local.apply(iris_folder(tmp_path, name="redeployed", prediction_log={"payloads": False}))
        runs.append(predict(second.endpoint))
        third = local.rollback("redeployed", progress=lambda _: None)  # revision 1's Bento again
        runs.append(predict(third.endpoint))
        assert (second.revision, third.revision) == (2, 3)
        wait_for(lambda: len(recorded("redeployed", runs)) == 3)
        rows = records("redeployed", columns="run_id, revision, input IS NOT NULL, output IS NOT NULL")
        assert [row for row in rows if row[0] in runs] == [(runs[0], 1, 1, 1), (runs[1], 2, 0, 0), (runs[2], 3, 1, 1)]
    finally:
        local.delete("redeployed", progress=lambda _: None)


def test_a_deployment_with_the_log_off_records_nothing(conduit_home, tmp_path):
    deployment = local.apply(iris_folder(tmp_path, name="unlogged", prediction_log={"enabled": False}))
    try:
        assert httpx.post(deployment.endpoint, json=[POINT], headers=KEY, timeout=60).status_code == 200
    finally:
        local.delete("unlogged", progress=lambda _: None)  # the stop flushes whatever a worker queued
    assert not database_path("unlogged").exists()
