"""The generated service.py: settings that shape serving performance, read from the manifest."""
from __future__ import annotations

import re

from conduit.manifest import Manifest
from conduit.render import render_glue


def service_py(**fields) -> str:
    document = {"name": "glue", "flow": [{"model_type": "sklearn_classifier", "path": "m.pkl"}], **fields}
    return render_glue(Manifest.model_validate(document))["service.py"]


def threads_per_worker(text: str) -> str:
    return re.search(r'os\.environ\.setdefault\(_variable, "(\d+)"\)', text).group(1)


def test_cpu_workers_share_the_cores_one_math_thread_each():
    text = service_py(hardware="CPU", cpu=4)
    assert "workers=4," in text and threads_per_worker(text) == "1"
    # set before BentoML (or anything that could load numpy or torch) is imported
    assert text.index("OMP_NUM_THREADS") < text.index("import bentoml")


def test_a_gpu_deployment_has_one_worker_with_all_its_cores():
    text = service_py(hardware="AMPERE_A5000", cpu=4)
    assert "workers=1," in text and threads_per_worker(text) == "4"


def test_the_traffic_timeout_bounds_model_calls():
    assert "timeout_s=60," in service_py(hardware="CPU", cpu=1)
