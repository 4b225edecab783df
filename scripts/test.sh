#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: the README's test command, and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The bench smoke test needs wrk and MLServer's own venv; without them it skips (and says so).
bash bench/setup.sh || echo "⚠️  bench set-up failed: tests/bench will skip"
exec .venv/bin/python -m pytest -q "$@"
