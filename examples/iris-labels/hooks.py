"""Hooks for the iris-labels flow (shipped into the bento next to conduit.yaml)."""
from __future__ import annotations

from conduit.errors import InputError

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABELS = ("setosa", "versicolor", "virginica")


def to_rows(data):
    """Each data point is {"sepal_length": 5.1, ...} (cm); the model takes rows in FEATURES order."""
    points = data if isinstance(data, list) else [data]
    missing = sorted({name for point in points for name in FEATURES if name not in point})
    if missing:
        raise InputError(f"each data point needs {', '.join(FEATURES)}; missing {', '.join(missing)}")
    return [[float(point[name]) for name in FEATURES] for point in points]


def to_labels(probabilities):
    """One {"label", "probability"} per data point: the most likely species."""
    results = []
    for row in probabilities.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        results.append({"label": LABELS[best], "probability": round(row[best], 4)})
    return results
