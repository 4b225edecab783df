"""Fit a ridge regression on scikit-learn's diabetes data and save it as model.pkl (about a second).

model_type sklearn calls predict: one number per patient (disease progression after a year).
CPU is the default for sklearn.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

HERE = Path(__file__).resolve().parent


def main() -> None:
    features, target = load_diabetes(return_X_y=True)
    model = Ridge(alpha=0.1).fit(features, target)
    with open(HERE / "model.pkl", "wb") as handle:
        pickle.dump(model, handle)
    print(f"wrote {HERE / 'model.pkl'} (R^2 {model.score(features, target):.2f})")


if __name__ == "__main__":
    main()
