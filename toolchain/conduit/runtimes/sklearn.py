"""scikit-learn: `sklearn` -> predict, `sklearn_classifier` -> predict_proba, `sklearn_preprocessor` -> transform.

Any pickled object with the method works (a Pipeline, a custom estimator); the object is checked
for that method at load time so a regressor saved where a classifier is declared fails at once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from conduit.errors import ModelLoadError
from conduit.runtimes import convert
from conduit.runtimes.base import CPU, Runtime
from conduit.runtimes.pickles import load_pickle

# What to declare instead when the loaded object lacks the method the declared type calls.
_INSTEAD = {
    "predict_proba": "declare model_type sklearn to call predict, or save a classifier",
    "transform": "declare model_type sklearn (predict) or sklearn_classifier (predict_proba)",
    "predict": "declare sklearn_preprocessor if it is a transformer",
}


class SklearnRuntime(Runtime):
    model_type: ClassVar[str] = "sklearn"
    method: ClassVar[str] = "predict"

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> SklearnRuntime:
        model = load_pickle(artifact_path)
        require_method(model, cls.method, cls.model_type, _INSTEAD[cls.method])
        return cls(model, device)

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        return getattr(self.model, self.method)(feature_batch(self.model, batch))


class SklearnClassifierRuntime(SklearnRuntime):
    model_type: ClassVar[str] = "sklearn_classifier"
    method: ClassVar[str] = "predict_proba"


class SklearnPreprocessorRuntime(SklearnRuntime):
    model_type: ClassVar[str] = "sklearn_preprocessor"
    method: ClassVar[str] = "transform"


def require_method(model: Any, method: str, model_type: str, instead: str) -> None:
    # hasattr is False for estimators whose method is unavailable (SVC(probability=False).predict_proba)
    if not hasattr(model, method):
        raise ModelLoadError(
            f"{type(model).__name__} has no {method}(), which model_type {model_type} calls: {instead}"
        )


def feature_batch(model: Any, batch: Any) -> Any:
    """The batch as the estimator expects it: a float array checked against `n_features_in_`.

    Estimators fitted on text or mixed columns (a pipeline starting with a vectorizer) take the
    values as they are, so strings pass through.
    """
    if _takes_text(batch):
        return convert.to_texts(batch) if isinstance(batch, (str, list)) else batch
    array = convert.to_array(batch, np.float64)
    return convert.check_features(array, getattr(model, "n_features_in_", None))


def _takes_text(batch: Any) -> bool:
    if isinstance(batch, str):
        return True
    return isinstance(batch, list) and bool(batch) and all(isinstance(item, str) for item in batch)
