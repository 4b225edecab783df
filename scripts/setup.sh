#!/usr/bin/env bash
# Set up a development environment from a fresh clone: a venv in .venv with conduit (editable) and every
# framework extra, pinned by constraints.txt so the committed bentos/ glue (framework versions) stays reproducible.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch first, pinned: a bare `torch` (or a newer pin) resolves to a multi-GB CUDA build.
"${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install -c constraints.txt -e ".[dev]"
echo "✅ conduit installed in .venv ($(.venv/bin/conduit --version))"
