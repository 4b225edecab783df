"""Train a logistic regression on iris and save it as model.pkl next to this file (about a second).

sklearn_classifier calls predict_proba: the endpoint returns one row of three class
probabilities (setosa, versicolor, virginica) per flower. CPU is the default for sklearn.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent


def main() -> None:
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500, random_state=0).fit(features, labels)
    with open(HERE / "model.pkl", "wb") as handle:
        pickle.dump(model, handle)
    print(f"wrote {HERE / 'model.pkl'} (training accuracy {model.score(features, labels):.2f})")


if __name__ == "__main__":
    main()
