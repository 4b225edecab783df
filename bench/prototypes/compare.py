"""`python -m bench.prototypes.compare`: serving-path variants for iris, interleaved, same harness.

The rows PROFILE.md cites: the bare peer with 1 and 2 workers, the raw-ASGI prototype
(fast_service.py) with 1 and 2 workers, conduit with its fast path on and off and with cpu 1 and 2,
and MLServer parallel_workers 0 (the strongest peer). Ratios are to conduit (fast path, cpu 2).
"""
from __future__ import annotations

import sys
from pathlib import Path

from bench import run
from bench.conduit_adapter import ConduitEndpoint, strategy
from bench.contenders import BentoMLPeer, MLServerPeer

PROTOTYPES = Path(__file__).resolve().parent
# uvloop + httptools, installed aside by bench/setup.sh: uvicorn picks them up when importable
FASTIO = {"PYTHONPATH": str(PROTOTYPES.parent / ".fastio")}
# BentoML wraps every response in its access-log middleware; this turns that one off
NO_ACCESS_LOG = {"BENTOML_CONFIG_OPTIONS": "api_server.logging.access.enabled=false"}


def variants(model, plan, work, notes):
    chosen = [
        BentoMLPeer(model, work, 1, "bentoml"),
        BentoMLPeer(model, work, 2, "bentoml-w2"),
        BentoMLPeer(model, work, 1, "bentoml+fastio", extra_env=FASTIO),
        BentoMLPeer(model, work, 1, "proto-w1", "fast_service:Fast", PROTOTYPES),
        BentoMLPeer(model, work, 2, "proto-w2", "fast_service:Fast", PROTOTYPES),
        BentoMLPeer(model, work, 2, "proto-w2+fastio", "fast_service:Fast", PROTOTYPES, extra_env=FASTIO),
        BentoMLPeer(model, work, 2, "proto-w2+fastio-log", "fast_service:Fast", PROTOTYPES,
                    extra_env={**FASTIO, **NO_ACCESS_LOG}),
    ]
    if strategy() is not None:
        chosen += [
            ConduitEndpoint(model, work),
            ConduitEndpoint(model, work, cpu=1, name="conduit-cpu1"),
            ConduitEndpoint(model, work, extra_env={"CONDUIT_FAST_PATH": "0"}, name="conduit-nofast"),
            ConduitEndpoint(model, work, extra_env=FASTIO, name="conduit+fastio"),
        ]
    if MLServerPeer.available():
        chosen.append(MLServerPeer(model, work, 0))
    return chosen


def main(argv: list[str] | None = None) -> int:
    plan, out = run.parse_args([*(argv or sys.argv[1:]), "--models", "iris", "--out", str(run.RESULTS_DIR / "compare")])
    document = run.run(plan, out, choose=variants)
    print(run.report.table(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
