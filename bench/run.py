"""`python -m bench [--quick|--full]`: conduit against its peers, interleaved, on 127.0.0.1.

Every contender is started once (its launch-to-ready time is its cold start), checked against the
in-process result, then loaded in rounds: for each round, model and scenario the contenders take
turns, in an order rotated every round, so a noisy neighbour hurts them alike and the ratios stay
fair. Results: a table on stdout, bench/results/<stamp>.json and .png (and latest.json/.png).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import report
from bench.conduit_adapter import ConduitDirect, ConduitEndpoint, ConduitHome, strategy
from bench.contenders import BentoMLPeer, Contender, MLServerPeer
from bench.load import run_wrk, wrk_path
from bench.servers import tree_cpu_seconds
from bench.models import BenchModel, make_models, time_in_process

SCENARIOS = {"seq": 1, "c8": 8, "c32": 32}
BATCHING = {"max_batch_size": 32, "max_latency_ms": 10}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Plan:
    mode: str
    seconds: float
    rounds: int
    models: list[str]
    in_process_calls: int
    mlserver: bool = True
    conduit: bool = True
    scenarios: dict = None  # name -> clients; None: SCENARIOS
    cold_repeats: int = 1  # more than 1: cold starts again, conduit and the bare peer taking turns

    def __post_init__(self) -> None:
        self.scenarios = dict(self.scenarios or SCENARIOS)

    def estimate_s(self, contenders: int) -> float:
        return self.rounds * contenders * len(self.scenarios) * (self.seconds + 0.3)


MODES = {
    "quick": dict(seconds=2, rounds=1, in_process_calls=300),
    "full": dict(seconds=6, rounds=3, in_process_calls=3000, cold_repeats=5),
}


def parse_args(argv: list[str] | None) -> tuple[Plan, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="about 90 s (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="3 rounds of 6 s per cell")
    parser.add_argument("--seconds", type=float, help="load duration of one cell (overrides the mode)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (overrides the mode)")
    parser.add_argument("--calls", type=int, help="in-process timing calls (overrides the mode)")
    parser.add_argument("--cold-repeats", type=int, help="interleaved cold starts of conduit and the bare peer (full: 5)")
    parser.add_argument("--models", default="iris,mlp", help="comma list of: iris, mlp")
    parser.add_argument("--no-mlserver", action="store_true", help="leave MLServer out")
    parser.add_argument("--no-conduit", action="store_true", help="leave conduit out (peers only)")
    parser.add_argument("--conduit-via", choices=["apply", "render"],
                        help="how to deploy conduit (default: apply when the CLI has it, else render)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for JSON and PNG")
    args = parser.parse_args(argv)
    if args.conduit_via:
        os.environ["BENCH_CONDUIT_VIA"] = args.conduit_via
    settings = dict(MODES[args.mode or "quick"])
    overrides = (("seconds", args.seconds), ("rounds", args.rounds), ("in_process_calls", args.calls),
                 ("cold_repeats", args.cold_repeats))
    settings.update({k: v for k, v in overrides if v})
    plan = Plan(args.mode or "quick", models=args.models.split(","), mlserver=not args.no_mlserver,
                conduit=not args.no_conduit, **settings)
    return plan, args.out


def contenders_for(model: BenchModel, plan: Plan, work: Path, notes: list[str]) -> list[Contender]:
    chosen: list[Contender] = []
    if plan.conduit and strategy() is not None:
        endpoint = ConduitEndpoint(model, work)
        chosen.append(endpoint)
        if strategy() == "apply" and model.key == "iris":
            chosen.append(ConduitDirect(endpoint))  # after its endpoint: started once that is up
        if model.key == "mlp":
            batched = ConduitEndpoint(model, work, batching=BATCHING)
            batched.scenarios = ("c32",)
            chosen.append(batched)
    elif plan.conduit:
        notes.append("conduit has neither `conduit apply` nor conduit.render: conduit left out")
    chosen.append(BentoMLPeer(model, work))
    if plan.mlserver and model.key == "iris":
        if MLServerPeer.available():
            chosen += [MLServerPeer(model, work, 0), MLServerPeer(model, work, 1)]
        else:
            notes.append("bench/.venv-mlserver missing (run bash bench/setup.sh): MLServer left out")
    return chosen


def start_all(contenders: dict[str, list[Contender]], stack: contextlib.ExitStack, notes: list[str]) -> list[dict]:
    """Start one at a time (so cold starts do not overlap); drop any that fails, with a note."""
    cold: list[dict] = []
    for key, group in contenders.items():
        for contender in list(group):
            try:
                ready_s = contender.start()
            except Exception as error:  # one broken contender must not cost the others' figures
                notes.append(f"{key}/{contender.label} did not start: {error}")
                contender.stop()
                group.remove(contender)
                continue
            stack.callback(contender.stop)
            if getattr(contender, "cold_start", True):
                cold += cold_start_entries(key, contender, ready_s)
    return cold


def cold_start_entries(key: str, contender: Contender, ready_s: float) -> list[dict]:
    if isinstance(contender, ConduitEndpoint):
        what = "conduit apply -> first prediction" if contender.strategy == "apply" else "render + serve -> first prediction"
        return [{"model": key, "contender": contender.label, "what": what, "seconds": round(contender.first_prediction_s, 3)}]
    what = "bare bentoml serve -> /readyz" if isinstance(contender, BentoMLPeer) else "mlserver start -> model ready"
    return [{"model": key, "contender": contender.label, "what": what, "seconds": round(ready_s, 3)}]


def same_results(got: list, expected: list) -> bool:
    """Numbers must agree closely; anything else (labels with scores) must at least match in count."""
    try:
        got_array, expected_array = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        return len(got) == len(expected)
    return got_array.shape == expected_array.shape and np.allclose(got_array, expected_array, atol=1e-4)


def check_results(model: BenchModel, contenders: list[Contender], notes: list[str]) -> None:
    expected = model.predict([model.row])
    for contender in contenders:
        got = contender.predict_once()
        if not same_results(got, expected):
            notes.append(f"{model.key}/{contender.label} answered {got!r:.120}, expected {expected!r:.120}")


def measure(plan: Plan, models: dict[str, BenchModel], contenders: dict[str, list[Contender]]) -> list[dict]:
    samples = []
    for round_index in range(plan.rounds):
        for key, group in contenders.items():
            for scenario, clients in plan.scenarios.items():
                turn = [c for c in group if c.scenarios is None or scenario in c.scenarios]
                shift = round_index % max(len(turn), 1)
                for contender in turn[shift:] + turn[:shift]:
                    roots, alone = contender.process_roots(), contender.processes_alone()
                    cpu_before = tree_cpu_seconds(roots, alone)
                    result = run_wrk(contender.url, contender.body, clients, plan.seconds, contender.auth)
                    cpu_ms = (tree_cpu_seconds(roots, alone) - cpu_before) * 1000 / max(result.requests, 1)
                    samples.append({"model": key, "scenario": scenario, "contender": contender.label,
                                    "round": round_index, **result.to_json(), "cpu_ms_per_req": round(cpu_ms, 4)})
                    print(f"  {key:5} {scenario:4} {contender.label:22} {result.rps:8.1f} req/s  "
                          f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                          f"CPU {cpu_ms:6.3f} ms/req  errors {result.errors}", flush=True)
    return samples


def reapply_entries(contenders: dict[str, list[Contender]]) -> list[dict]:
    entries = []
    for key, group in contenders.items():
        for contender in group:
            if isinstance(contender, ConduitEndpoint):
                seconds = contender.reapply()
                if seconds is not None:
                    entries.append({"model": key, "contender": contender.label,
                                    "what": "conduit apply again, nothing changed", "seconds": round(seconds, 3)})
    return entries


def repeated_cold_starts(plan: Plan, models: dict[str, BenchModel], work: Path, notes: list[str]) -> list[dict]:
    """Cold starts again, `plan.cold_repeats` times: conduit (`apply` into a fresh CONDUIT_HOME ->
    first prediction) and the bare peer (`bentoml serve` -> ready) taking turns, first one then
    the other. One start each is too noisy on a shared 2-core host to compare; this gives medians."""
    if plan.cold_repeats <= 1 or not plan.conduit or strategy() != "apply":
        return []
    seconds: dict[tuple[str, str, str], list[float]] = {}
    try:
        cold_start_turns(plan, models, work, notes, seconds)
    finally:
        ConduitHome.close_all()
    return [{"model": key, "contender": label, "what": f"{what} (median of {len(values)})",
             "seconds": round(float(np.median(values)), 3), "all": values}
            for (key, label, what), values in seconds.items()]


def cold_start_turns(plan: Plan, models: dict[str, BenchModel], work: Path, notes: list[str],
                     seconds: dict[tuple[str, str, str], list[float]]) -> None:
    for repeat in range(plan.cold_repeats):
        for key, model in models.items():
            folder = work / f"cold-{repeat}"
            folder.mkdir(parents=True, exist_ok=True)
            pair: list[Contender] = [ConduitEndpoint(model, folder), BentoMLPeer(model, folder)]
            for contender in pair if repeat % 2 == 0 else pair[::-1]:
                try:
                    ready_s = contender.start()
                except Exception as error:
                    notes.append(f"cold start {repeat} of {key}/{contender.label} failed: {error}")
                    continue
                finally:
                    contender.stop()
                entry = cold_start_entries(key, contender, ready_s)[0]
                seconds.setdefault((key, entry["contender"], entry["what"]), []).append(entry["seconds"])


def run(plan: Plan, out: Path, choose=contenders_for) -> dict:
    """`choose(model, plan, work, notes)` names the contenders (bench/prototypes/compare.py picks others)."""
    wrk_path()
    notes: list[str] = []
    meta = {"mode": plan.mode, "seconds": plan.seconds, "rounds": plan.rounds, "cold_repeats": plan.cold_repeats,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
            "loadavg_before": os.getloadavg(), "python": platform.python_version(),
            "conduit_strategy": strategy() if plan.conduit else None,
            "host_note": "shared 2-core host: absolute figures are noisy; compare ratios from one run"}
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as folder, contextlib.ExitStack() as stack:
        work = Path(folder)
        stack.callback(ConduitHome.close_all)  # last out: a gateway left by a failed apply stops too
        models = make_models(plan.models, work / "models") if isinstance(plan.models[0], str) \
            else {model.key: model for model in plan.models}  # models made by the caller
        contenders = {key: choose(model, plan, work, notes) for key, model in models.items()}
        total = sum(len(g) for g in contenders.values())
        print(f"bench {plan.mode}: {total} servers, about {plan.estimate_s(total):.0f} s of load", flush=True)
        cold = start_all(contenders, stack, notes)
        for key, model in models.items():
            check_results(model, contenders[key], notes)
        in_process = {f"{key}:1 row": time_in_process(m, plan.in_process_calls) for key, m in models.items()}
        for key, rows in ((k, m.batch_rows) for k, m in models.items() if m.batch_rows):
            in_process[f"{key}:{rows} rows"] = time_in_process(models[key], max(plan.in_process_calls // 10, 5), rows)
        samples = measure(plan, models, contenders)
        cold += reapply_entries(contenders)
        stack.close()  # every server down before the repeated cold starts
        cold += repeated_cold_starts(plan, models, work, notes)
    rows = report.aggregate(samples)
    names = {r["contender"] for r in rows}
    reference = "conduit" if "conduit" in names else "bentoml" if "bentoml" in names else sorted(names)[0]
    report.add_ratios(rows, reference)
    meta["loadavg_after"] = os.getloadavg()
    document = {"meta": meta, "reference": reference, "rows": rows, "samples": samples,
                "in_process": in_process, "cold_start": cold, "notes": notes}
    save(document, out)
    return document


def save(document: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = document["meta"]["started"].replace(":", "")
    for name in (stamp, "latest"):
        report.write_json(document, out / f"{name}.json")
        report.write_chart(document, out / f"{name}.png")


def main(argv: list[str] | None = None) -> int:
    plan, out = parse_args(argv)
    document = run(plan, out)
    print()
    print(report.table(document))
    print(f"\nwrote {out}/latest.json and latest.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
