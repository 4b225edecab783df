"""The benchmark models, made fresh in a work folder: the same artifact feeds every contender.

- iris: LogisticRegression (predict_proba), ~0.1 ms a call here: serving overhead dominates.
- mlp:  a 64->4096->4096->10 torch MLP saved with cloudpickle, ~3.6 ms for one row and ~11 ms for
        32 rows on these cores: compute-bound, so merging requests (adaptive batching) can pay.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson

MLP_DIMS = (64, 4096, 4096, 10)
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


@dataclass
class BenchModel:
    key: str                  # "iris" | "mlp"
    artifact: Path
    conduit_model_type: str
    row: list
    predict: Callable[[list], list] = field(repr=False)  # the in-process call: JSON rows -> JSON results
    batch_rows: int = 0       # also time the in-process call on this many rows (0: not)
    stage: dict | None = None  # conduit flow stage, when not {model_type, path: artifact name}
    hardware: str = "CPU"

    @property
    def body(self) -> bytes:
        """The request body of the predict contract: one data point."""
        return orjson.dumps([self.row])


def make_iris(folder: Path) -> BenchModel:
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    artifact = folder / "iris.pkl"
    artifact.write_bytes(pickle.dumps(model))
    return BenchModel("iris", artifact, "sklearn_classifier", IRIS_ROW,
                      lambda rows: model.predict_proba(np.asarray(rows, dtype=float)).tolist())


def make_mlp(folder: Path) -> BenchModel:
    import cloudpickle
    import torch

    torch.manual_seed(0)
    layers: list = []
    for fan_in, fan_out in zip(MLP_DIMS, MLP_DIMS[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1]).eval()
    artifact = folder / "mlp.pkl"
    artifact.write_bytes(cloudpickle.dumps(net))

    def predict(rows: list) -> list:
        with torch.inference_mode():
            return net(torch.tensor(rows, dtype=torch.float32)).tolist()

    row = [round(0.01 * i, 2) for i in range(MLP_DIMS[0])]
    return BenchModel("mlp", artifact, "torch", row, predict, batch_rows=32)


MAKERS = {"iris": make_iris, "mlp": make_mlp}


def make_models(keys: list[str], folder: Path) -> dict[str, BenchModel]:
    models = {}
    for key in keys:
        model_dir = folder / key
        model_dir.mkdir(parents=True, exist_ok=True)
        models[key] = MAKERS[key](model_dir)
    return models


def time_in_process(model: BenchModel, calls: int, rows: int = 1) -> dict:
    """The limit: decode the same body and call the model, `calls` times, no server."""
    body = orjson.dumps([model.row] * rows)
    for _ in range(min(calls, 5)):
        model.predict(orjson.loads(body))
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        orjson.dumps(model.predict(orjson.loads(body)))
        samples.append(time.perf_counter() - start)
    samples.sort()
    return {
        "rows": rows,
        "calls": calls,
        "p50_ms": samples[len(samples) // 2] * 1000,
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000,
        "rps": len(samples) / sum(samples),
    }
