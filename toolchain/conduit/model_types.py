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
    # The modules its runtime imports to load a model (the slow part of a worker's start), which a
    # fork server may import ahead (conduit.targets.local.preload): none that start threads on import.
    imports: tuple[str, ...]


MODEL_TYPES: dict[ModelType, ModelTypeInfo] = {
    ModelType.SKLEARN: ModelTypeInfo((".pkl",), False, Hardware.CPU, "sklearn", ("scikit-learn",), ("sklearn",)),
    ModelType.SKLEARN_CLASSIFIER: ModelTypeInfo((".pkl",), False, Hardware.CPU, "sklearn", ("scikit-learn",), ("sklearn",)),
    ModelType.SKLEARN_PREPROCESSOR: ModelTypeInfo((".pkl",), False, Hardware.CPU, "sklearn", ("scikit-learn",), ("sklearn",)),
    ModelType.TORCH: ModelTypeInfo((".pkl", ".pt"), False, Hardware.AMPERE_A5000, "torch", ("torch",), ("torch",)),
    ModelType.XGBOOST_REGRESSOR: ModelTypeInfo(
        (".pkl", ".json", ".ubj"), False, Hardware.CPU, "xgboost", ("xgboost-cpu", "scikit-learn"), ("xgboost",)
    ),
    ModelType.XGBOOST_CLASSIFIER: ModelTypeInfo(
        (".pkl", ".json", ".ubj"), False, Hardware.CPU, "xgboost", ("xgboost-cpu", "scikit-learn"), ("xgboost",)
    ),
    # onnxruntime starts a thread when imported, and threads do not survive a fork: not preloaded.
    ModelType.ONNX: ModelTypeInfo((".onnx",), False, Hardware.AMPERE_A5000, "onnx", ("onnxruntime",), ()),
    ModelType.SPACY: ModelTypeInfo((), True, Hardware.CPU, "spacy", ("spacy",), ("spacy",)),
    ModelType.HUGGINGFACE_PIPELINE: ModelTypeInfo(
        (), False, Hardware.AMPERE_A5000, "huggingface", ("transformers", "torch"), ("torch", "transformers.pipelines")
    ),
}


def info(name: ModelType | str) -> ModelTypeInfo:
    return MODEL_TYPES[ModelType(name)]
