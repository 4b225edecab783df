"""What a pickled model does: classify, regress or transform, read from the class it names.

The class that answers is the one the model's predictions come from: the outermost object, or the
last step of a scikit-learn Pipeline (nested ones too). Decision: where scikit-learn is installed
here, its class is imported (scikit-learn's code only, never the file's, and never unpickled) and
asked, since `LogisticRegression` or `SVC` do not say "classifier" in their names; without
scikit-learn, or for a class from elsewhere, the name decides.
"""

from __future__ import annotations

import importlib
from typing import Any, Optional

from conduit.artifacts.pickled import Built, Global

PIPELINES = ("sklearn.pipeline.Pipeline",)
CLASSIFIER_NAMES = ("LogisticRegression", "LogisticRegressionCV", "SVC", "LinearSVC", "NuSVC", "GaussianNB")
PREPROCESSOR_ENDINGS = ("Scaler", "Encoder", "Imputer", "Transformer", "Vectorizer", "Binarizer", "PCA", "Normalizer")


def final_estimator(top: Any) -> Optional[Global]:
    """The class of the object whose predictions a flow stage returns (a Pipeline's last step)."""
    if not isinstance(top, Built) or top.cls is None:
        return None
    if top.cls.dotted in PIPELINES:
        last = _last_step(top.state)
        return final_estimator(last) if last is not None else top.cls
    return top.cls


def _last_step(state: Any) -> Any:
    steps = state.get("steps") if isinstance(state, dict) else None
    if not isinstance(steps, list) or not steps or not isinstance(steps[-1], tuple) or len(steps[-1]) != 2:
        return None
    return steps[-1][1]


def role_of(framework: Optional[str], estimator: Optional[Global], import_classes: bool = True) -> Optional[str]:
    """Returns "classifier", "predictor" (plain `predict`), "preprocessor", or None when the class does not say."""
    if estimator is None or framework not in ("sklearn", "xgboost"):
        return None
    return (_asked(estimator) if import_classes else None) or _named(estimator.name)


def _asked(estimator: Global) -> Optional[str]:
    """scikit-learn's own answer for its class, or None (not installed, not one of its classes)."""
    if estimator.module.split(".")[0] != "sklearn":
        return None
    try:
        base = importlib.import_module("sklearn.base")
        cls = getattr(importlib.import_module(estimator.module), estimator.name)
    except (ImportError, AttributeError):
        return None
    if not isinstance(cls, type):
        return None
    if issubclass(cls, base.ClassifierMixin):
        return "classifier"
    if hasattr(cls, "transform") and not hasattr(cls, "predict"):
        return "preprocessor"
    return "predictor" if hasattr(cls, "predict") else None


def _named(name: str) -> Optional[str]:
    if "Classifier" in name or name in CLASSIFIER_NAMES:
        return "classifier"
    if name.endswith(PREPROCESSOR_ENDINGS):
        return "preprocessor"
    return "predictor" if "Regressor" in name or name.startswith("XGB") else None
