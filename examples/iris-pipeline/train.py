"""A two-stage flow: a StandardScaler (scaler.pkl) feeding a logistic regression (model.pkl).

The scaler is a sklearn_preprocessor stage: its transform output is the classifier's input, so
the endpoint takes raw measurements and returns class probabilities. CPU is the default for sklearn.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent


def main() -> None:
    features, labels = load_iris(return_X_y=True)
    scaler = StandardScaler().fit(features)
    model = LogisticRegression(max_iter=500, random_state=0).fit(scaler.transform(features), labels)
    for name, artifact in (("scaler.pkl", scaler), ("model.pkl", model)):
        with open(HERE / name, "wb") as handle:
            pickle.dump(artifact, handle)
    print(f"wrote {HERE / 'scaler.pkl'} and {HERE / 'model.pkl'}")


if __name__ == "__main__":
    main()
