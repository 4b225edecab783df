"""Model types as the seed document spells them, and what each one expects on disk."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from conduit.hardware import Hardware


class ModelType(str, enum.Enum):
    SKLEARN = "sklearn"
    SKLEARN_CLASSIFIER = "sklearn_classifier"
    SKLEARN_PREPROCESSOR = "sklearn_preprocessor"
    TORCH = "torch"
    XGBOOST_REGRESSOR = "xgboost_regressor"
    XGBOOST_CLASSIFIER = "xgboost_classifier"
    ONNX = "onnx"
    SPACY = "spacy"
    HUGGINGFACE_PIPELINE = "huggingface_pipeline"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ModelTypeInfo:
    suffixes: tuple[str, ...]  # accepted artifact file endings; () with `folder` for a directory
    folder: bool  # the artifact is a directory (spaCy)
    default_hardware: Hardware
    extra: str  # the pip extra that installs the framework (`pip install conduit-deploy[extra]`)
    packages: tuple[str, ...]  # distributions whose installed versions are pinned into the bento


MODEL_TYPES: dict[ModelType, ModelTypeInfo] = {
    ModelType.SKLEARN: ModelTypeInfo((".pkl",), False, Hardware.CPU, "sklearn", ("scikit-learn",)),
    ModelType.SKLEARN_CLASSIFIER: ModelTypeInfo((".pkl",), False, Hardware.CPU, "sklearn", ("scikit-learn",)),
    ModelType.SKLEARN_PREPROCESSOR: ModelTypeInfo((".pkl",), False, Hardware.CPU, "sklearn", ("scikit-learn",)),
    ModelType.TORCH: ModelTypeInfo((".pkl", ".pt"), False, Hardware.AMPERE_A5000, "torch", ("torch",)),
    ModelType.XGBOOST_REGRESSOR: ModelTypeInfo(
        (".pkl", ".json", ".ubj"), False, Hardware.CPU, "xgboost", ("xgboost-cpu", "scikit-learn")
    ),
    ModelType.XGBOOST_CLASSIFIER: ModelTypeInfo(
        (".pkl", ".json", ".ubj"), False, Hardware.CPU, "xgboost", ("xgboost-cpu", "scikit-learn")
    ),
    ModelType.ONNX: ModelTypeInfo((".onnx",), False, Hardware.AMPERE_A5000, "onnx", ("onnxruntime",)),
    ModelType.SPACY: ModelTypeInfo((), True, Hardware.CPU, "spacy", ("spacy",)),
    ModelType.HUGGINGFACE_PIPELINE: ModelTypeInfo(
        (), False, Hardware.AMPERE_A5000, "huggingface", ("transformers", "torch")
    ),
}


def info(name: ModelType | str) -> ModelTypeInfo:
    return MODEL_TYPES[ModelType(name)]
