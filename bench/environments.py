"""`python -m bench.environments`: what a deployment's own Python environment costs (issue 13).

Renders the iris (scikit-learn) Bento once, then, each in a fresh CONDUIT_HOME:
- warm-up: `ensure()` once, so uv's cache holds every wheel (a cold cache is a download, not us);
- new: `ensure()` of the same Bento in another fresh home: a new environment from a warm cache
  (the issue's bar: at most 10 s on these 2 cores);
- again: `ensure()` of that Bento again, `--rounds` times: what a re-apply adds when the
  environment exists (bar: at most 0.3 s).
Prints the seconds of each (the median of `again`) and whether each bar holds.

    python -m bench.environments [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.models import make_iris

NEW_BAR_S = 10.0
AGAIN_BAR_S = 0.3


def render_iris(work: Path) -> Path:
    from conduit.manifest import Manifest
    from conduit.render import render

    model = make_iris(work)
    stage = {"model_type": model.conduit_model_type, "path": model.artifact.name}
    manifest = Manifest.model_validate({"name": "bench-env", "flow": [stage], "cpu": 1}).with_base_dir(work)
    return render(manifest, work / "out").path


def timed_ensure(bento: Path, home: Path) -> tuple[float, bool]:
    from conduit.environments import ensure

    os.environ["CONDUIT_HOME"] = str(home)
    start = time.perf_counter()
    environment = ensure(bento, None, progress=lambda _line: None)
    return time.perf_counter() - start, environment.created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-env-") as scratch:
        work = Path(scratch)
        bento = render_iris(work)
        warm_up, _ = timed_ensure(bento, work / "home-warm-up")
        new, created = timed_ensure(bento, work / "home")
        again = [timed_ensure(bento, work / "home")[0] for _ in range(args.rounds)]
    median = statistics.median(again)
    print(f"warm-up (fills uv's cache):         {warm_up:7.2f} s")
    print(f"new environment, warm cache:        {new:7.2f} s  (bar {NEW_BAR_S} s: {'ok' if new <= NEW_BAR_S else 'MISSED'})")
    print(f"existing environment, median of {args.rounds}: {median * 1000:7.2f} ms (bar {AGAIN_BAR_S} s: "
          f"{'ok' if median <= AGAIN_BAR_S else 'MISSED'})")  # fmt: skip
    return 0 if created and new <= NEW_BAR_S and median <= AGAIN_BAR_S else 1


if __name__ == "__main__":
    sys.exit(main())
