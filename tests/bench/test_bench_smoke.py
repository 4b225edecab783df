"""The bench's quick mode on tiny counts: every contender starts, answers correctly and gets a row.

No timing assertions: the figures come from a shared host. This checks the harness, not the speed.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The bench trains its own iris model and a torch MLP: without those frameworks (the unit lane) it skips.
pytest.importorskip("sklearn")
pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # bench/ is a folder of the repository, not an installed package

from bench.conduit_adapter import strategy  # noqa: E402
from bench.contenders import MLServerPeer  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)"),
]


def expected_rows() -> set[tuple[str, str, str]]:
    iris = ["bentoml"] + (["mlserver-pw0", "mlserver-pw1"] if MLServerPeer.available() else [])
    mlp = ["bentoml"]
    if strategy() is not None:
        iris.append("conduit")
        mlp.append("conduit")
    if strategy() == "apply":
        iris.append("conduit-direct")  # the replica past the gateway
    rows = {(model, scenario, contender)
            for model, group in (("iris", iris), ("mlp", mlp))
            for contender in group for scenario in ("seq", "c8", "c32")}
    if strategy() is not None:
        rows.add(("mlp", "c32", "conduit-batch"))
    return rows


def test_quick_mode_on_tiny_counts_writes_rows_ratios_and_a_chart(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "bench", "--quick", "--seconds", "1", "--rounds", "1", "--calls", "20",
               "--out", str(tmp_path)]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "ratios are contender /" in completed.stdout

    document = json.loads((tmp_path / "latest.json").read_text())
    assert document["notes"] == [], document["notes"]  # every contender started and answered correctly
    rows = {(row["model"], row["scenario"], row["contender"]): row for row in document["rows"]}
    assert set(rows) == expected_rows()
    for row in rows.values():
        assert row["requests"] > 0 and row["errors"] == 0
        for metric in ("rps", "p50_ms", "p99_ms"):
            assert math.isfinite(row[f"{metric}_vs_ref"]) and row[f"{metric}_vs_ref"] > 0
    reference = "conduit" if strategy() is not None else "bentoml"
    assert document["reference"] == reference
    assert all(rows[key][f"rps_vs_ref"] == 1.0 for key in rows if key[2] == reference)
    assert {entry["contender"] for entry in document["cold_start"]} >= {"bentoml"}
    assert (tmp_path / "latest.png").stat().st_size > 0


def test_the_bert_bench_runs_on_the_cpu_with_a_small_model(tmp_path):
    """The GPU bench's code path (a BERT text classifier built locally, served with batching off
    and on, 64 clients) on the CPU: where no GPU is lent, this is what shows it works."""
    pytest.importorskip("transformers")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "bench.gpu_bert", "--cpu", "--seconds", "3", "--rounds", "1", "--out", str(tmp_path)]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    document = json.loads((tmp_path / "latest.json").read_text())
    assert document["notes"] == [], document["notes"]
    rows = {row["contender"]: row for row in document["rows"]}
    assert set(rows) == ({"conduit", "conduit-batch"} if strategy() is not None else set())
    for row in rows.values():
        assert row["model"] == "bert" and row["scenario"] == "c64" and row["requests"] > 0 and row["errors"] == 0


def test_the_prediction_log_bench_prints_both_rows_a_ratio_and_the_records(tmp_path):
    if strategy() != "apply":
        pytest.skip("the prediction log bench applies deployments")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "bench.prediction_log", "--seconds", "1", "--rounds", "1"]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("BENCH_JSON "))
    summary = json.loads(line[len("BENCH_JSON "):])
    assert summary["log-on"]["rps"] > 0 and summary["log-off"]["rps"] > 0
    assert math.isfinite(summary["ratio_rps_on_over_off"]) and summary["errors"] == 0
    assert summary["log_on_records"] >= summary["log_on_answers_counted_by_wrk"]  # none lost
