"""`conduit predictions NAME` over a real log written by the served side's writer (no server is
needed to fill one): filters, --count, --json, --export to JSON Lines and Parquet, and errors."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conduit.cli.main import main
from conduit.manifest import PredictionLog as Settings
from conduit.predictions import parse_time
from conduit.serving.prediction_log import Exchange, PredictionLog, database_path

NAME = "logged"
NOW = time.time()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    log = PredictionLog(database_path(NAME), NAME, 1, Settings())
    # An hour ago: a two-point answer; ten minutes ago: a 422; now: a 401 (no payload was read).
    log.record(Exchange("run-a", NOW - 3600, [[1, 2], [3, 4]], [[0.9], [0.1]], ["p-1", "p-2"], 0.5), 200, 0.002)
    log.record(Exchange("run-b", NOW - 600, [[1]], error={"type": "invalid_input", "message": "expected shape [N, 2]"}), 422, 0.001)
    log.record(Exchange("run-c", NOW, error={"type": "unauthorized", "message": "missing API key"}), 401, 0.0001)
    log.flush()
    return tmp_path / "home"


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(["predictions", NAME, *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def shown(capsys, *args: str) -> list[dict]:
    code, out = run(capsys, "--json", *args)
    assert code == 0, out
    return json.loads(out)


def test_the_table_shows_every_record_oldest_first(home, capsys):
    code, out = run(capsys)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:4] == ["TIME", "STATUS", "REV", "PREDICTION_ID"]
    assert [line.split()[1] for line in lines[1:]] == ["200", "200", "422", "401"]
    assert "invalid_input: expected shape [N, 2]" in lines[3]


def test_a_record_carries_its_ids_timing_input_output_and_error(home, capsys):
    first, _, error, unauthorized = shown(capsys)
    assert first["prediction_id"] == "p-1" and first["run_id"] == "run-a" and first["point"] == 0
    assert (first["input"], first["output"], first["run_time_ms"], first["latency_ms"]) == ([1, 2], [0.9], 0.5, 2.0)
    assert first["time"].endswith("Z") and abs(parse_time(first["time"]) - (NOW - 3600)) < 0.01
    assert error["error"] == {"type": "invalid_input", "message": "expected shape [N, 2]"} and error["input"] == [[1]]
    assert unauthorized["input"] is None and unauthorized["prediction_id"] is None


@pytest.mark.parametrize(
    "args, runs",
    [
        (("--id", "p-2"), ["run-a"]),
        (("--run-id", "run-a"), ["run-a", "run-a"]),
        (("--status", "422"), ["run-b"]),
        (("--since", "30m"), ["run-b", "run-c"]),
        (("--until", "30m"), ["run-a", "run-a"]),
        (("--since", "2h", "--until", "5m"), ["run-a", "run-a", "run-b"]),
        (("--limit", "1"), ["run-c"]),
    ],
)
def test_filters(home, capsys, args, runs):
    assert [item["run_id"] for item in shown(capsys, *args)] == runs


def test_iso_times_filter_too(home, capsys):
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW - 1200))
    assert [item["run_id"] for item in shown(capsys, "--since", since)] == ["run-b", "run-c"]


def test_count_prints_only_the_number(home, capsys):
    assert run(capsys, "--count") == (0, "4\n")
    assert run(capsys, "--count", "--status", "200") == (0, "2\n")


def test_export_to_json_lines(home, capsys, tmp_path):
    target = tmp_path / "out.jsonl"
    assert run(capsys, "--export", str(target), "--status", "200") == (0, f"Wrote 2 records to {target}\n")
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [item["prediction_id"] for item in records] == ["p-1", "p-2"]


def test_export_to_parquet(home, capsys, tmp_path):
    parquet = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "out.parquet"
    assert run(capsys, "--export", str(target))[0] == 0
    table = parquet.read_table(target).to_pylist()
    assert [row["status"] for row in table] == [200, 200, 422, 401]
    assert json.loads(table[0]["input"]) == [1, 2] and json.loads(table[2]["error"])["type"] == "invalid_input"


def test_an_unknown_export_format_and_a_bad_time_are_usage_errors(home, capsys, tmp_path):
    assert run(capsys, "--export", str(tmp_path / "out.csv")) == (2, "error: cannot export to out.csv: name a .jsonl or .parquet file\n")
    code, out = run(capsys, "--since", "yesterday")
    assert code == 2 and "'yesterday' is not a time" in out


def test_a_deployment_without_a_log_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "empty"))
    code, out = run(capsys)
    assert code == 1 and out.startswith("error: logged has no prediction log yet")


def test_parquet_without_pyarrow_says_how_to_get_it(home, capsys, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    code, out = run(capsys, "--export", str(tmp_path / "out.parquet"))
    assert (code, out) == (2, "error: exporting Parquet needs pyarrow: pip install pyarrow, or export to a .jsonl file\n")


@pytest.mark.parametrize("name", ["../../../../tmp/t1x/fake", "../conduit", "Logged", "a/b"])
def test_a_name_that_is_not_a_deployment_name_is_refused_before_any_file_is_opened(home, capsys, name):
    fake = home / "conduit.db"  # as the state store would be, next to the predictions folder
    fake.write_bytes(database_path(NAME).read_bytes())
    code = main(["predictions", name])
    out = capsys.readouterr().err
    assert code == 2 and out.startswith(f"error: name '{name}' ") and out.endswith(": give the name of a deployment (conduit ls lists them)\n")
