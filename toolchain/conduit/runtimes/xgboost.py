"""XGBoost: a pickled sklearn-API model (`.pkl`) or XGBoost's own `.json` / `.ubj` model file.

`.json` and `.ubj` files hold a Booster; they are loaded into XGBRegressor / XGBClassifier so the
regressor calls `predict` and the classifier `predict_proba`, as for a pickle. A model whose
objective is not a classification objective is refused where a classifier is declared.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Optional

from conduit.errors import ModelLoadError
from conduit.runtimes.base import CPU, Runtime, import_framework, require_file
from conduit.runtimes.pickles import load_pickle
from conduit.runtimes.sklearn import feature_batch, require_method

NATIVE_SUFFIXES = (".json", ".ubj")
CLASSIFICATION_OBJECTIVES = ("binary:", "multi:")


class XGBoostRegressorRuntime(Runtime):
    model_type: ClassVar[str] = "xgboost_regressor"
    method: ClassVar[str] = "predict"
    wrapper: ClassVar[str] = "XGBRegressor"

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> "XGBoostRegressorRuntime":
        xgboost = import_framework("xgboost", "xgboost")
        if artifact_path.suffix in NATIVE_SUFFIXES:
            model = _load_native(getattr(xgboost, cls.wrapper)(), artifact_path)
        else:
            model = load_pickle(artifact_path)
        cls.check(model)
        return cls(model, device)

    @classmethod
    def check(cls, model: Any) -> None:
        require_method(model, cls.method, cls.model_type, "save an XGBoost model with the sklearn API (XGBRegressor)")

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        return getattr(self.model, self.method)(feature_batch(self.model, batch))


class XGBoostClassifierRuntime(XGBoostRegressorRuntime):
    model_type: ClassVar[str] = "xgboost_classifier"
    method: ClassVar[str] = "predict_proba"
    wrapper: ClassVar[str] = "XGBClassifier"

    @classmethod
    def check(cls, model: Any) -> None:
        require_method(model, cls.method, cls.model_type, "declare model_type xgboost_regressor, or save a classifier")
        objective = _objective(model)
        if objective and not objective.startswith(CLASSIFICATION_OBJECTIVES):
            raise ModelLoadError(
                f"the model's objective is {objective}, a regression objective, but model_type xgboost_classifier "
                "calls predict_proba: declare model_type xgboost_regressor"
            )


def _load_native(model: Any, path: Path) -> Any:
    require_file(path)
    try:
        model.load_model(str(path))
    except Exception as exc:  # XGBoostError carries the C++ message; keep its first line
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"{path.name} is not an XGBoost model file ({first_line})") from exc
    return model


def _objective(model: Any) -> Optional[str]:
    try:
        config = json.loads(model.get_booster().save_config())
    except Exception:  # not fitted or not an XGBoost model: predict_proba was checked already
        return None
    return config.get("learner", {}).get("objective", {}).get("name")
