"""huggingface_pipeline: a local tiny BERT, request parameters passed to the call."""
from __future__ import annotations

import pytest

pipeline = pytest.importorskip("transformers").pipeline

from conduit.errors import ModelLoadError
from conduit.runtimes.flow import Flow

from .helpers import load_flow, make_manifest

TEXTS = ["i love this movie", "i hate this film"]


def hf_stage(folder, **extra):
    return {"model_type": "huggingface_pipeline", "task": "text-classification", "model": folder.name, **extra}


@pytest.fixture(scope="module")
def reference(hf_folder):
    return pipeline("text-classification", model=str(hf_folder), device="cpu")


def test_matches_the_pipeline_called_directly(hf_folder, reference):
    result = load_flow(hf_folder.parent, [hf_stage(hf_folder)]).predict(TEXTS)
    expected = reference(TEXTS)
    assert [r["label"] for r in result] == [e["label"] for e in expected]
    assert [r["score"] for r in result] == pytest.approx([e["score"] for e in expected], rel=1e-5)


def test_request_parameters_reach_the_call(hf_folder, reference):
    flow = load_flow(hf_folder.parent, [hf_stage(hf_folder)])
    result = flow.predict(TEXTS[0], parameters={"top_k": None})
    assert len(result) == 1 and {item["label"] for item in result[0]} == {"NEG", "POS"}
    expected = {item["label"]: item["score"] for item in reference(TEXTS[:1], top_k=None)[0]}
    assert {item["label"]: item["score"] for item in result[0]} == pytest.approx(expected, rel=1e-5)


def test_options_reach_the_pipeline(hf_folder):
    flow = load_flow(hf_folder.parent, [hf_stage(hf_folder, options={"top_k": 2})])
    assert [len(item) for item in flow.predict(TEXTS)] == [2, 2]


def test_missing_model_is_a_load_error_not_a_download(tmp_path):
    stage = {"model_type": "huggingface_pipeline", "task": "text-classification", "model": "no-such-org/no-such-model"}
    with pytest.raises(ModelLoadError, match=r"flow\[0\] \(huggingface_pipeline\): cannot load Hugging Face pipeline 'text-classification' from no-such-org/no-such-model: "):
        load_flow(tmp_path, [stage])


@pytest.mark.gpu
def test_gpu_hardware_puts_the_pipeline_on_cuda(hf_folder, reference):
    flow = Flow.load(make_manifest(hf_folder.parent, [hf_stage(hf_folder)], hardware="AMPERE_A5000"))
    assert flow.stages[0].runtime.model.device.type == "cuda"
    result = flow.predict(TEXTS)
    assert [r["score"] for r in result] == pytest.approx([e["score"] for e in reference(TEXTS)], rel=1e-3)
