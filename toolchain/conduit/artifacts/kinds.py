"""`Artifact`: what one model file or folder holds, and the model type that serves it.

Every reader in `conduit.artifacts` fills the same record, so a new question (the training
library's version, say) is one more field filled where the file records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from conduit.model_types import ModelType


@dataclass(frozen=True)
class Artifact:
    format: str  # pickle, joblib, xgboost-json, xgboost-ubj, onnx, torchscript, torch-save, spacy, huggingface
    framework: Optional[str] = None  # sklearn, torch, xgboost, onnx, spacy, transformers; None: cannot tell
    role: Optional[str] = None  # classifier, predictor (plain predict), preprocessor; None: cannot tell
    modules: tuple[str, ...] = ()  # the modules a pickle names, in order
    estimator: Optional[str] = None  # the dotted class that predicts (a Pipeline's last step)
    task: Optional[str] = None  # a Hugging Face folder's task, guessed from its architecture
    # distribution -> the version the file records of the library that wrote it: exact ("1.6.1"),
    # or a range where the format records one (a spaCy pipeline's ">=3.8.0,<3.9.0")
    versions: dict[str, str] = field(default_factory=dict)
    producer: Optional[str] = None  # what the file says wrote it, for formats whose writer is not the server
    # (ONNX: "pytorch 2.13.0"; TorchScript: its archive format version)
    opset: Optional[int] = None  # ONNX: the default domain's operator set version
    problem: Optional[str] = None  # why the runtime could not load it, following "it" ("is truncated: ...")


def model_type_of(artifact: Artifact) -> Optional[ModelType]:
    """The model type that serves `artifact`, or None when its framework cannot be told."""
    framework, classifier = artifact.framework, artifact.role == "classifier"
    if framework == "sklearn":
        sklearn_types = {"classifier": ModelType.SKLEARN_CLASSIFIER, "preprocessor": ModelType.SKLEARN_PREPROCESSOR}
        return sklearn_types.get(artifact.role or "", ModelType.SKLEARN)
    if framework == "xgboost":
        return ModelType.XGBOOST_CLASSIFIER if classifier else ModelType.XGBOOST_REGRESSOR
    return FRAMEWORK_TYPES.get(framework or "")


FRAMEWORK_TYPES = {
    "torch": ModelType.TORCH,
    "onnx": ModelType.ONNX,
    "spacy": ModelType.SPACY,
    "transformers": ModelType.HUGGINGFACE_PIPELINE,
}

# Each model type's framework, as `Artifact.framework` names it.
TYPE_FRAMEWORKS = {
    ModelType.SKLEARN: "sklearn",
    ModelType.SKLEARN_CLASSIFIER: "sklearn",
    ModelType.SKLEARN_PREPROCESSOR: "sklearn",
    ModelType.XGBOOST_REGRESSOR: "xgboost",
    ModelType.XGBOOST_CLASSIFIER: "xgboost",
    **{kind: framework for framework, kind in FRAMEWORK_TYPES.items()},
}
