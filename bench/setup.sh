#!/usr/bin/env bash
# Set up what the bench needs beyond conduit's own venv (scripts/setup.sh): wrk (the load
# generator), matplotlib (the chart), and MLServer 1.7.1 in its own venv, bench/.venv-mlserver,
# with the scikit-learn version the benchmark pickles are written with. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; else sudo apt-get install -y wrk; fi
fi
.venv/bin/python -m pip --disable-pip-version-check -q install "matplotlib>=3.8"

SKLEARN=$(.venv/bin/python -c "import sklearn; print(sklearn.__version__)")
if [ ! -x bench/.venv-mlserver/bin/mlserver ]; then
  python3 -m venv bench/.venv-mlserver
fi
# MLServer 1.7.1 breaks with uvloop 0.22 (SeldonIO/MLServer#2286).
bench/.venv-mlserver/bin/pip --disable-pip-version-check -q install \
  "mlserver==1.7.1" "mlserver-sklearn==1.7.1" "uvloop<0.22" "scikit-learn==${SKLEARN}"
# uvloop + httptools are conduit dependencies (in .venv already); bench/prototypes/without_fastio
# hides them again where a variant measures uvicorn's pure-Python defaults.
echo "✅ bench ready: wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), MLServer $(bench/.venv-mlserver/bin/mlserver --version 2>&1 | tail -1)"
