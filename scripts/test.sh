#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: the README's test command, and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# The bench smoke test needs wrk and MLServer's own venv; without them it skips (and says so).
bash bench/setup.sh || echo "⚠️  bench set-up failed: tests/bench will skip"
# Lint and type-check the package first: a finding fails the run before the slower tests start.
.venv/bin/ruff check toolchain
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
