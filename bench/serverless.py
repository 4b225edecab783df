"""`python -m bench.serverless [--quick]`: issue 12's figures for the local target's gateway, all
from one run on 127.0.0.1, each a ratio against a peer measured in the same run.

The model is bench.models' iris (LogisticRegression, ~0.1 ms a call: the serving path dominates),
applied with the Python API into temporary CONDUIT_HOMEs, each with its gateway on a free
CONDUIT_PORT (bench/conduit_adapter.py). The scale-from-zero deployments have `cpu: 1` (one
BentoML worker, as the peer), the loaded ones `--cpu` (default 2, the manifest's default: one
worker per core):

1. Scale from zero: `min_replicas: 0, cooldown: 2`; once the gateway says "scaled to zero" and no
   replica is left, one predict (held by the gateway while a replica starts) -> its 200. Once in a
   home whose gateway forks replicas from a warm zygote (the default), once in a home started with
   CONDUIT_WARM_START=0 (a cold replica: what the zygote buys), and the peer: a bare `bentoml
   serve` of bench/peers/bentoml_service.py from process start to /readyz 200. Taking turns, in
   an order rotated each repeat; medians of `--repeats`.
2. c32 throughput through the gateway vs the same replica called on its own port (read from
   `run/gateway/state.json`), `max_replicas: 1` so both reach the one replica; and vs MLServer's
   best (parallel_workers 0 or 1) where bench/.venv-mlserver is installed.
3. Sequential p50 through the gateway minus direct: what the gateway adds to one request; and
   the CPU the gateway process spends per request (conduit's CPU ms/req minus direct's: the
   steadiest figure on a shared host).
4. c32 with `max_replicas: 2` (scaled out by a c32 warm-up first) over `max_replicas: 1`.

Load is wrk, interleaved as in `python -m bench` (bench.run.measure). Prints the rows, the scale
from zero times and the figures with their targets; writes bench/results/serverless-latest.json.

    python -m bench.serverless            # the figures: 5 repeats, 3 rounds of 4 s (a few minutes)
    python -m bench.serverless --quick    # 1 repeat, 1 round of 1 s: the harness works
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from bench import report, run
from bench.conduit_adapter import ConduitDirect, ConduitEndpoint, ConduitHome
from bench.contenders import BentoMLPeer, Contender, MLServerPeer
from bench.load import run_wrk, wrk_path
from bench.models import BenchModel, make_models

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODES = {"full": {"seconds": 4.0, "rounds": 3, "repeats": 5}, "quick": {"seconds": 1.0, "rounds": 1, "repeats": 1}}
SCENARIOS = {"seq": 1, "c32": 32}
ZERO = {"min_replicas": 0, "max_replicas": 1, "cooldown": 2}
# Scaled out by the warm-up, and kept out while the other contenders take their turns.
TWO = {"min_replicas": 1, "max_replicas": 2, "cooldown": 300}
WARM_START_ENV = "CONDUIT_WARM_START"  # read by the gateway when it starts a replica
ZERO_WAIT_S = 90.0
SCALE_OUT_WAIT_S = 60.0


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serverless", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1 round of 1 s: checks the harness")
    parser.add_argument("--seconds", type=float, help="load duration of one cell (overrides the mode)")
    parser.add_argument("--rounds", type=int, help="interleaved load rounds (overrides the mode)")
    parser.add_argument("--repeats", type=int, help="interleaved scale-from-zero repeats (overrides the mode)")
    parser.add_argument("--cpu", type=int, default=2, help="cpu of the loaded deployments (default 2)")
    parser.add_argument("--no-mlserver", action="store_true", help="leave MLServer out")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for serverless-latest.json")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    for key, value in MODES[mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.mode = mode
    return args


# --- 1. scale from zero ---------------------------------------------------------------------------


def wait_scaled_to_zero(endpoint: ConduitEndpoint, timeout_s: float = ZERO_WAIT_S) -> None:
    """Until the gateway says "scaled to zero" and no replica of it is left, stopping or not."""
    home, name = endpoint.conduit_home, endpoint.deploy_name
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if home.deployment(name).get("state") == "scaled to zero" and not home.replicas(name):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not scale to zero within {timeout_s:.0f}s: {home.deployment(name)}")


def first_response_s(endpoint: ConduitEndpoint) -> float:
    """From zero replicas: one predict, held while a replica starts, to its 200."""
    wait_scaled_to_zero(endpoint)
    started = time.perf_counter()
    endpoint.predict_once()  # raises on anything but a 200
    return time.perf_counter() - started


def peer_ready_s(model: BenchModel, work: Path) -> float:
    """A bare `bentoml serve` of the peer service: process start to /readyz 200."""
    peer = BentoMLPeer(model, work)
    try:
        return peer.start()
    finally:
        peer.stop()


def scale_from_zero(turns: dict[str, Callable[[], float]], repeats: int, notes: list[str]) -> dict[str, list[float]]:
    """Every turn once per repeat, the order rotated each repeat so drift hurts them alike."""
    seconds: dict[str, list[float]] = {label: [] for label in turns}
    labels = list(turns)
    for repeat in range(repeats):
        shift = repeat % len(labels)
        for label in labels[shift:] + labels[:shift]:
            try:
                seconds[label].append(round(turns[label](), 4))
            except Exception as error:  # noqa: BLE001 - one failed start must not cost the other figures
                notes.append(f"scale from zero {repeat} of {label} failed: {error}")
            print(f"  scale from zero {repeat}: {label:14} {seconds[label][-1:] or 'failed'}", flush=True)
    return seconds


# --- 2-4. load --------------------------------------------------------------------------------------


def load_contenders(model: BenchModel, work: Path, home: ConduitHome, args: argparse.Namespace,
                    notes: list[str]) -> list[Contender]:
    gateway = ConduitEndpoint(model, work, cpu=args.cpu, home=home)
    scaled_out = ConduitEndpoint(model, work, cpu=args.cpu, name="conduit-2replicas", scaling=TWO, home=home)
    scaled_out.scenarios = ("c32",)
    chosen: list[Contender] = [gateway, ConduitDirect(gateway), scaled_out]
    if not args.no_mlserver and MLServerPeer.available():
        chosen += [MLServerPeer(model, work, 0), MLServerPeer(model, work, 1)]
    elif not args.no_mlserver:
        notes.append("bench/.venv-mlserver missing (run bash bench/setup.sh): MLServer left out")
    for peer in chosen[3:]:
        peer.scenarios = ("c32",)
    return chosen


def scale_out(endpoint: ConduitEndpoint, seconds: float, notes: list[str]) -> None:
    """Load it at c32 until the gateway runs its second replica (ready), so the cells measure two."""
    deadline = time.monotonic() + SCALE_OUT_WAIT_S
    while time.monotonic() < deadline:
        run_wrk(endpoint.url, endpoint.body, 32, max(seconds, 1.0), endpoint.auth)
        if len(endpoint.conduit_home.replicas(endpoint.deploy_name, "ready")) >= 2:
            return
    notes.append(f"{endpoint.label} did not scale out to 2 ready replicas within {SCALE_OUT_WAIT_S:.0f}s")


# --- the figures -------------------------------------------------------------------------------------


def median(values: list[float]) -> Optional[float]:
    return round(statistics.median(values), 4) if values else None


def ratio(top: Optional[float], bottom: Optional[float]) -> Optional[float]:
    return round(top / bottom, 3) if top is not None and bottom else None


def figure(what: str, value: Optional[float], target: Optional[tuple[str, float]] = None) -> dict:
    """One figure; `target` ("<=" or ">=", bound), None where it is there to be read, not met."""
    met = None
    if target is not None and value is not None:
        met = value <= target[1] if target[0] == "<=" else value >= target[1]
    return {"figure": what, "value": value, "target": f"{target[0]} {target[1]:g}" if target else None, "met": met}


def figures(rows: list[dict], zero: dict[str, Optional[float]]) -> list[dict]:
    """Issue 12's figures from the aggregated rows (bench.report) and the scale-from-zero medians."""
    cell = {(row["scenario"], row["contender"]): row for row in rows}

    def metric(scenario: str, contender: str, name: str) -> Optional[float]:
        row = cell.get((scenario, contender))
        return row[name] if row else None

    rps = {contender: metric("c32", contender, "rps") for contender in
           ("conduit", "conduit-direct", "conduit-2replicas", "mlserver-pw0", "mlserver-pw1")}
    mlserver_best = max((v for k, v in rps.items() if k.startswith("mlserver") and v), default=None)

    def added(scenario: str, name: str) -> Optional[float]:
        gateway, direct = metric(scenario, "conduit", name), metric(scenario, "conduit-direct", name)
        return round(gateway - direct, 3) if gateway is not None and direct is not None else None

    return [
        figure("scale from zero -> first 200 / bare bentoml serve -> /readyz", ratio(zero.get("conduit-zero"), zero.get("bentoml")), ("<=", 0.5)),
        figure("the same with CONDUIT_WARM_START=0 (cold replica) / bare bentoml", ratio(zero.get("conduit-zero-cold"), zero.get("bentoml"))),
        figure("c32 req/s through the gateway / direct to its replica", ratio(rps["conduit"], rps["conduit-direct"]), (">=", 0.9)),
        figure("c32 req/s through the gateway / MLServer's best (pw0, pw1)", ratio(rps["conduit"], mlserver_best), (">=", 4)),
        figure("seq p50 added by the gateway (ms)", added("seq", "p50_ms"), ("<=", 0.2)),
        figure("seq CPU ms per request of the gateway process", added("seq", "cpu_ms_per_req")),
        figure("c32 CPU ms per request of the gateway process", added("c32", "cpu_ms_per_req")),
        figure("c32 req/s max_replicas 2 / max_replicas 1 (2 cores)", ratio(rps["conduit-2replicas"], rps["conduit"])),
    ]


def table(document: dict) -> str:
    lines = [f"{'scenario':8} {'contender':18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>10} {'err':>4}"]
    for row in sorted(document["rows"], key=lambda r: (r["clients"], r["contender"])):
        lines.append(f"{row['scenario']:8} {row['contender']:18} {row['rps']:9.1f} {row['p50_ms']:8.3f}"
                     f" {row['p99_ms']:8.3f} {row['cpu_ms_per_req']:10.3f} {row['errors']:4d}")
    lines += ["", "scale from zero (s):      median   all"]
    for label, values in document["scale_from_zero"].items():
        lines.append(f"  {label:22} {_number(median(values)):>7}   {values}")
    lines += ["", f"{'figure':66} {'value':>8} {'target':>7} {'met':>4}"]
    for item in document["figures"]:
        met = "-" if item["met"] is None else "yes" if item["met"] else "NO"
        lines.append(f"{item['figure']:66} {_number(item['value']):>8} {item['target'] or '':>7} {met:>4}")
    lines += [f"note: {note}" for note in document["notes"]]
    return "\n".join(lines)


def _number(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


# --- the run -------------------------------------------------------------------------------------------


def measure_all(args: argparse.Namespace, work: Path, stack: contextlib.ExitStack, notes: list[str]) -> dict:
    model = make_models(["iris"], work / "models")["iris"]
    warm = ConduitHome.at(work / "home-warm")
    cold = ConduitHome.at(work / "home-cold", {WARM_START_ENV: "0"})
    zero = {"conduit-zero": ConduitEndpoint(model, work, cpu=1, name="conduit-zero", scaling=ZERO, home=warm),
            "conduit-zero-cold": ConduitEndpoint(model, work, cpu=1, name="conduit-zero-cold", scaling=ZERO, home=cold)}
    load = load_contenders(model, work, warm, args, notes)
    groups = {"iris": [*zero.values(), *load]}
    deploys = run.start_all(groups, stack, notes)  # drops (with a note) any that did not start
    started = [c for c in load if c in groups["iris"]]
    run.check_results(model, started, notes)
    turns: dict[str, Callable[[], float]] = {
        label: (lambda e=e: first_response_s(e)) for label, e in zero.items() if e in groups["iris"]}
    turns["bentoml"] = lambda: peer_ready_s(model, work)
    seconds = scale_from_zero(turns, args.repeats, notes)
    for endpoint in (c for c in started if c.label == "conduit-2replicas"):
        scale_out(endpoint, args.seconds, notes)  # type: ignore[arg-type]
    plan = run.Plan("serverless", args.seconds, args.rounds, ["iris"], 0, scenarios=SCENARIOS)
    samples = run.measure(plan, {"iris": model}, {"iris": started})
    return {"deploys": deploys, "scale_from_zero": seconds, "samples": samples}


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    wrk_path()
    notes: list[str] = []
    meta = {"mode": args.mode, "seconds": args.seconds, "rounds": args.rounds, "repeats": args.repeats, "cpu": args.cpu,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
            "host_note": "shared 2-core host: absolute figures are noisy; compare ratios from one run"}
    with tempfile.TemporaryDirectory(prefix="conduit-serverless-") as folder, contextlib.ExitStack() as stack:
        stack.callback(ConduitHome.close_all)  # last out: every gateway stops, whatever failed
        measured = measure_all(args, Path(folder), stack, notes)
    rows = report.aggregate(measured["samples"])
    meta["loadavg_after"] = os.getloadavg()
    zero = {label: median(values) for label, values in measured["scale_from_zero"].items()}
    document = {"meta": meta, "rows": rows, "scale_from_zero": measured["scale_from_zero"], "scale_from_zero_median_s": zero,
                "figures": figures(rows, zero), "deploys": measured["deploys"], "samples": measured["samples"], "notes": notes}
    save(document, args.out)
    print()
    print(table(document))
    print(f"\nwrote {args.out}/serverless-latest.json")
    return 0


def save(document: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = document["meta"]["started"].replace(":", "")
    for name in (f"serverless-{stamp}", "serverless-latest"):
        (out / f"{name}.json").write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    sys.exit(main())
