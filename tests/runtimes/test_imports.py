"""The runtimes ship into every bento: importing them must not import any model framework."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "sklearn", "xgboost", "onnxruntime", "spacy", "transformers", "bentoml")


def test_importing_every_runtime_imports_no_framework():
    code = (
        "import sys\n"
        "from conduit.runtimes.base import RUNTIMES, runtime_class\n"
        "import conduit.runtimes.flow, conduit.cli.run\n"
        "for model_type in RUNTIMES: runtime_class(model_type)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
