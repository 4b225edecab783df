"""Artifacts other than pickles, each told by what it holds: XGBoost's `.json`/`.ubj` (a "learner"
whose objective says classifier or not), ONNX, TorchScript (a zip with `code/` and `constants.pkl`;
`torch.save` writes a zip with only `data.pkl`, which `torch.jit.load` cannot read), a spaCy folder
(`meta.json` naming a language) and a Hugging Face folder (`config.json`; its architecture says the task).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any, Optional

from conduit.artifacts.kinds import Artifact

CLASSIFIER_OBJECTIVES = ("binary:", "multi:")
UBJ_OBJECTIVE = re.compile(rb"(binary|multi|reg|count|survival|rank):[a-z_]+")
# XGBoost writes keys sorted: `learner` opens the file, and its `objective` follows the trees, near the end.
UBJ_SCAN_BYTES = 1 << 20
# The end of a Hugging Face architecture's class name -> the pipeline task it serves.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForImageClassification", "image-classification"),
    ("ForAudioClassification", "audio-classification"),
    ("ForCTC", "automatic-speech-recognition"),
    ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
    ("ForObjectDetection", "object-detection"),
    ("Model", "feature-extraction"),
)


def inspect_xgboost_json(path: Path) -> Optional[Artifact]:
    document = _json(path)
    learner = document.get("learner") if isinstance(document, dict) else None
    if not isinstance(learner, dict):
        return None
    objective = learner.get("objective", {}).get("name") if isinstance(learner.get("objective"), dict) else None
    version = document.get("version")
    versions = {"xgboost": ".".join(map(str, version))} if isinstance(version, list) else {}
    return Artifact("xgboost-json", "xgboost", role=_objective_role(objective), versions=versions)


def inspect_xgboost_ubj(path: Path) -> Optional[Artifact]:
    with open(path, "rb") as file:
        head = file.read(UBJ_SCAN_BYTES)
        if b"learner" not in head:
            return None
        file.seek(max(0, path.stat().st_size - UBJ_SCAN_BYTES))
        tail = file.read(UBJ_SCAN_BYTES)
    objective = UBJ_OBJECTIVE.search(tail)
    return Artifact("xgboost-ubj", "xgboost", role=_objective_role(objective.group(0).decode() if objective else None))


def _objective_role(objective: Optional[str]) -> Optional[str]:
    if not isinstance(objective, str):
        return None
    return "classifier" if objective.startswith(CLASSIFIER_OBJECTIVES) else "predictor"


def inspect_onnx(path: Path) -> Artifact:
    return Artifact("onnx", "onnx")


def inspect_torch_file(path: Path) -> Artifact:
    """A `.pt`: TorchScript, or a `torch.save` file (which the torch runtime cannot load)."""
    if not zipfile.is_zipfile(path):
        return Artifact("torch", "torch")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
        return Artifact("torchscript", "torch")
    problem = (
        "was written by torch.save, not TorchScript: torch.jit.load cannot read it"
        if any(name.endswith("/data.pkl") for name in names)
        else None
    )
    return Artifact("torch-save" if problem else "torch", "torch", problem=problem)


def inspect_folder(path: Path) -> Optional[Artifact]:
    meta = _json(path / "meta.json")
    if isinstance(meta, dict) and "lang" in meta:
        return Artifact("spacy", "spacy")
    config = _json(path / "config.json")
    if isinstance(config, dict) and ("architectures" in config or "model_type" in config):
        version = config.get("transformers_version")
        versions = {"transformers": version} if isinstance(version, str) else {}
        return Artifact("huggingface", "transformers", task=_task(config.get("architectures")), versions=versions)
    return None


def _task(architectures: Any) -> Optional[str]:
    names = [name for name in architectures if isinstance(name, str)] if isinstance(architectures, list) else []
    for name in names:
        task = next((task for ending, task in ARCHITECTURE_TASKS if name.endswith(ending)), None)
        if task is not None:
            return task
    return None


def _json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
