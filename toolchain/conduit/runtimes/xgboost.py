"""XGBoost: a pickled sklearn-API model (`.pkl`) or XGBoost's own `.json` / `.ubj` model file.

`.json` and `.ubj` files hold a Booster; they are loaded into XGBRegressor / XGBClassifier so the
regressor calls `predict` and the classifier `predict_proba`, as for a pickle. A model whose
objective is not a classification objective is refused where a classifier is declared.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Optional

from conduit.artifacts.formats import CLASSIFIER_OBJECTIVES
from conduit.errors import ModelLoadError
from conduit.runtimes.base import CPU, Runtime, import_framework, require_file, short_reason
from conduit.runtimes.pickles import load_pickle
from conduit.runtimes.sklearn import feature_batch, require_method

NATIVE_SUFFIXES = (".json", ".ubj")


class XGBoostRegressorRuntime(Runtime):
    model_type: ClassVar[str] = "xgboost_regressor"
    method: ClassVar[str] = "predict"
    wrapper: ClassVar[str] = "XGBRegressor"
    instead: ClassVar[str] = "save an XGBoost model with the sklearn API (XGBRegressor)"

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> XGBoostRegressorRuntime:
        xgboost = import_framework("xgboost", "xgboost")
        artifact_path = require_file(artifact_path)
        if artifact_path.suffix in NATIVE_SUFFIXES:
            model = cls.load_native(xgboost, artifact_path)
        else:
            model = load_pickle(artifact_path)
        require_method(model, cls.method, cls.model_type, cls.instead)
        cls.check_objective(_objective(model))
        return cls(model, device)

    @classmethod
    def load_native(cls, xgboost: Any, path: Path) -> Any:
        """Read the Booster first (is it XGBoost? which objective?), then load it into the sklearn wrapper."""
        require_file(path)
        try:
            cls.check_objective(_objective(xgboost.Booster(model_file=str(path))))
            model = getattr(xgboost, cls.wrapper)()
            model.load_model(str(path))
        except ModelLoadError:
            raise
        except Exception as exc:  # XGBoostError carries the C++ message
            raise ModelLoadError(f"{path.name} is not an XGBoost model file ({short_reason(exc)})") from exc
        return model

    @classmethod
    def check_objective(cls, objective: Optional[str]) -> None:
        """Regressors accept any objective (a binary:logistic model predicts a probability)."""

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        return getattr(self.model, self.method)(feature_batch(self.model, batch))


class XGBoostClassifierRuntime(XGBoostRegressorRuntime):
    model_type: ClassVar[str] = "xgboost_classifier"
    method: ClassVar[str] = "predict_proba"
    wrapper: ClassVar[str] = "XGBClassifier"
    instead: ClassVar[str] = "declare model_type xgboost_regressor, or save a classifier"

    @classmethod
    def check_objective(cls, objective: Optional[str]) -> None:
        if objective and not objective.startswith(CLASSIFIER_OBJECTIVES):
            raise ModelLoadError(
                f"the model's objective is {objective}, a regression objective, but model_type xgboost_classifier "
                "calls predict_proba: declare model_type xgboost_regressor"
            )


def _objective(model: Any) -> Optional[str]:
    """The learning objective of a Booster or an sklearn-API model (None if it has none to read)."""
    try:
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        config = json.loads(booster.save_config())
    except Exception:  # noqa: BLE001 - not fitted or not an XGBoost model: predict_proba was checked already
        return None
    return config.get("learner", {}).get("objective", {}).get("name")
