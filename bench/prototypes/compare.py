"""`python -m bench.prototypes.compare`: serving-path variants for iris, interleaved, same harness.

The before/after rows PROFILE.md cites, one change at a time, all ratios to `conduit` (everything
on: `conduit apply` with cpu 2, the fast path in front of BentoML, uvloop + httptools):

- `conduit-direct`  the same deployment on its replica's own port, past the gateway (the gateway's cost)
- `conduit-inner`   CONDUIT_FAST_PATH=inner: the fast path inside BentoML's middleware stack
- `conduit-nofast`  CONDUIT_FAST_PATH=0: /predict through the declared BentoML route
- `conduit-slowio`  uvloop + httptools hidden (bench/prototypes/without_fastio): uvicorn's defaults
- `conduit-cpu1`    cpu 1, so 1 worker instead of 2
- `bentoml`, `bentoml-slowio`: the hand-written peer, with and without uvloop + httptools
- `mlserver-pw0`    the strongest peer

With `--models mlp` (the torch model): batching off and on, each also with every worker's math
libraries on all cores (`-allcores`: OMP/MKL/OpenBLAS threads = 2, as before conduit set one per
worker), and the hand-written peer.
"""
from __future__ import annotations

import sys
from pathlib import Path

from bench import run
from bench.conduit_adapter import ConduitDirect, ConduitEndpoint, strategy
from bench.contenders import BentoMLPeer, MLServerPeer

PROTOTYPES = Path(__file__).resolve().parent
# uvloop + httptools are conduit dependencies; this folder on PYTHONPATH hides them again
SLOWIO = {"PYTHONPATH": str(PROTOTYPES / "without_fastio")}
# what a worker's torch/BLAS used before the generated service.py set one thread per worker
ALL_CORES = {name: "2" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def variants(model, plan, work, notes):
    if model.key == "mlp":
        return batching_variants(model, work)
    chosen = [
        BentoMLPeer(model, work, 1, "bentoml"),
        BentoMLPeer(model, work, 1, "bentoml-slowio", extra_env=SLOWIO),
    ]
    if strategy() is not None:
        conduit = ConduitEndpoint(model, work)
        chosen += [conduit]
        if strategy() == "apply":
            chosen.append(ConduitDirect(conduit))
        chosen += [
            ConduitEndpoint(model, work, extra_env={"CONDUIT_FAST_PATH": "inner"}, name="conduit-inner"),
            ConduitEndpoint(model, work, extra_env={"CONDUIT_FAST_PATH": "0"}, name="conduit-nofast"),
            ConduitEndpoint(model, work, extra_env=SLOWIO, name="conduit-slowio"),
            ConduitEndpoint(model, work, cpu=1, name="conduit-cpu1"),
        ]
    if MLServerPeer.available():
        chosen.append(MLServerPeer(model, work, 0))
    return chosen


def batching_variants(model, work):
    chosen = [BentoMLPeer(model, work, 1, "bentoml")]
    if strategy() is not None:
        chosen += [
            ConduitEndpoint(model, work),
            ConduitEndpoint(model, work, batching=run.BATCHING),
            ConduitEndpoint(model, work, extra_env=ALL_CORES, name="conduit-allcores"),
            ConduitEndpoint(model, work, batching=run.BATCHING, extra_env=ALL_CORES, name="conduit-batch-allcores"),
        ]
    return chosen


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or sys.argv[1:])
    if "--models" not in argv:
        argv += ["--models", "iris"]
    plan, out = run.parse_args([*argv, "--out", str(run.RESULTS_DIR / "compare")])
    document = run.run(plan, out, choose=variants)
    print(run.report.table(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
