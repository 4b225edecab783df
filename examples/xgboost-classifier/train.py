"""Fit a small XGBClassifier on iris and save it in XGBoost's binary JSON format (model.ubj).

model_type xgboost_classifier calls predict_proba: three class probabilities per flower.
CPU is the default for xgboost.
"""
from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_iris
from xgboost import XGBClassifier

HERE = Path(__file__).resolve().parent


def main() -> None:
    features, labels = load_iris(return_X_y=True)
    model = XGBClassifier(n_estimators=20, max_depth=2, random_state=0, n_jobs=1).fit(features, labels)
    model.save_model(HERE / "model.ubj")
    print(f"wrote {HERE / 'model.ubj'}")


if __name__ == "__main__":
    main()
