"""A flow with hooks: named measurements in, a label with its probability out.

hooks.py:to_rows (pre) turns {"sepal_length": ...} objects into feature rows; the classifier
returns probabilities; hooks.py:to_labels (post) turns each row into {"label", "probability"}.
The model is the iris classifier, saved as model.pkl (about a second). CPU is the default for sklearn.
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
    print(f"wrote {HERE / 'model.pkl'}")


if __name__ == "__main__":
    main()
