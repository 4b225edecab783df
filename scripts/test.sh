#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: the README's test command, and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# The bench smoke test needs wrk and MLServer's own venv; without them it skips (and says so).
bash bench/setup.sh || echo "⚠️  bench set-up failed: tests/bench will skip"
# The dashboard's browser tests drive Debian's chromium with Playwright (never `playwright install`,
# which downloads a browser); where it cannot be installed they skip.
install_chromium() {
  command -v chromium >/dev/null && return 0
  command -v apt-get >/dev/null || return 1
  local as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo -n)
  "${as_root[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium >/dev/null
}
install_chromium || echo "⚠️  chromium could not be installed: tests/dashboard's browser tests will skip"
# Lint and type-check the package first: a finding fails the run before the slower tests start.
.venv/bin/ruff check toolchain
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
