#!/usr/bin/env bash
# Set up a development environment from a fresh clone: a venv in .venv with conduit (editable) and the
# extras named (default `sklearn`, what the README's quick start needs; the test command passes `dev`,
# every framework), pinned by constraints.txt so the committed bentos/ glue stays reproducible.
# Usage: bash scripts/setup.sh [EXTRA[,EXTRA...]]   Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS=${1:-sklearn}
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch only for the extras that need it, and first, pinned: a bare `torch` (or a newer pin) resolves
# to a multi-GB CUDA build, so a scikit-learn quick start must never reach it.
case ",$EXTRAS," in
  *,torch,*|*,huggingface,*|*,all,*|*,dev,*) "${PIP[@]}" install "torch==2.13.0" ;;
esac
"${PIP[@]}" install -c constraints.txt -e ".[$EXTRAS]"
echo "✅ conduit installed in .venv with [$EXTRAS] ($(.venv/bin/conduit --version))"
