"""bench.serverless: its figures from the rows, and its command line.

The run itself (`python -m bench.serverless --quick`) deploys five servers and takes minutes on
this host, so it is not run here; these check what the figures are made of. No timing assertions.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # bench/ is a folder of the repository, not an installed package

from bench.serverless import figures, scale_from_zero


def row(scenario: str, contender: str, rps: float, p50_ms: float = 1.0, cpu_ms: float = 0.5) -> dict:
    return {"scenario": scenario, "contender": contender, "rps": rps, "p50_ms": p50_ms, "cpu_ms_per_req": cpu_ms}


ROWS = [
    row("seq", "conduit", 500, p50_ms=1.35, cpu_ms=0.5),
    row("seq", "conduit-direct", 600, p50_ms=1.2, cpu_ms=0.3),
    row("c32", "conduit", 1800, cpu_ms=0.38),
    row("c32", "conduit-direct", 2000, cpu_ms=0.3),
    row("c32", "conduit-2replicas", 2700),
    row("c32", "mlserver-pw0", 300),
    row("c32", "mlserver-pw1", 450),
]


def test_the_figures_are_ratios_against_peers_of_the_same_run_with_their_targets():
    found = {item["figure"]: item for item in figures(ROWS, {"conduit-zero": 1.5, "conduit-zero-cold": 7.0, "bentoml": 5.0})}
    values = {what: (item["value"], item["target"], item["met"]) for what, item in found.items()}
    assert values == {
        "scale from zero -> first 200 / bare bentoml serve -> /readyz": (0.3, "<= 0.5", True),
        "the same with CONDUIT_WARM_START=0 (cold replica) / bare bentoml": (1.4, None, None),
        "c32 req/s through the gateway / direct to its replica": (0.9, ">= 0.9", True),
        "c32 req/s through the gateway / MLServer's best (pw0, pw1)": (4.0, ">= 4", True),
        "seq p50 added by the gateway (ms)": (0.15, "<= 0.2", True),
        "seq CPU ms per request of the gateway process": (0.2, None, None),
        "c32 CPU ms per request of the gateway process": (0.08, None, None),
        "c32 req/s max_replicas 2 / max_replicas 1 (2 cores)": (1.5, None, None),
    }


def test_a_missed_target_says_so_and_a_missing_peer_leaves_its_figure_empty():
    rows = [r for r in ROWS if not r["contender"].startswith("mlserver")] + [row("c32", "mlserver-pw1", 900)]
    found = {item["figure"]: item for item in figures(rows, {"conduit-zero": 6.0, "bentoml": 5.0})}
    assert found["scale from zero -> first 200 / bare bentoml serve -> /readyz"]["met"] is False
    assert found["c32 req/s through the gateway / MLServer's best (pw0, pw1)"]["value"] == 2.0
    assert found["c32 req/s through the gateway / MLServer's best (pw0, pw1)"]["met"] is False
    cold = found["the same with CONDUIT_WARM_START=0 (cold replica) / bare bentoml"]
    assert cold["value"] is None and cold["met"] is None


def test_scale_from_zero_takes_turns_in_a_rotated_order_and_notes_a_failed_turn():
    order: list[str] = []

    def turn(label: str, seconds: float):
        def measure() -> float:
            order.append(label)
            if label == "b" and len(order) > 3:
                raise RuntimeError("no 200")
            return seconds

        return measure

    notes: list[str] = []
    seconds = scale_from_zero({"a": turn("a", 1.0), "b": turn("b", 2.0), "c": turn("c", 3.0)}, 2, notes)
    assert order == ["a", "b", "c", "b", "c", "a"]
    assert seconds == {"a": [1.0, 1.0], "b": [2.0], "c": [3.0, 3.0]}
    assert notes == ["scale from zero 1 of b failed: no 200"]


def test_the_command_line_names_its_modes():
    completed = subprocess.run([sys.executable, "-m", "bench.serverless", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "--quick" in completed.stdout and "--repeats" in completed.stdout
