"""Fit a small XGBRegressor on the diabetes data and save it in XGBoost's JSON format (xgb_model.json).

XGBoost's own format (.json or .ubj) is portable across XGBoost versions, unlike a pickle.
model_type xgboost_regressor calls predict: one number per patient. CPU is the default for xgboost.
"""
from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_diabetes
from xgboost import XGBRegressor

HERE = Path(__file__).resolve().parent


def main() -> None:
    features, target = load_diabetes(return_X_y=True)
    model = XGBRegressor(n_estimators=30, max_depth=3, random_state=0, n_jobs=1).fit(features, target)
    model.save_model(HERE / "xgb_model.json")
    print(f"wrote {HERE / 'xgb_model.json'}")


if __name__ == "__main__":
    main()
