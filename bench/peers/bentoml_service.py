"""The peer: a minimal hand-written BentoML 1.4 service, the way its docs show one.

Served bare: `bentoml serve bentoml_service:Peer --working-dir bench/peers`. The model comes from
PEER_MODEL_PATH (a pickle: sklearn -> predict_proba, torch module -> forward); request body
`{"data": [[...]]}`, response the JSON list of results. No auth, no envelope: the least a user writes.
"""
from __future__ import annotations

import os
import pickle

import bentoml
import numpy as np

WORKERS = int(os.environ.get("PEER_WORKERS", "1"))


def load_predict(path: str):
    with open(path, "rb") as artifact:
        model = pickle.load(artifact)
    if hasattr(model, "predict_proba"):
        return lambda rows: model.predict_proba(np.asarray(rows, dtype=float)).tolist()
    import torch

    def forward(rows):
        with torch.inference_mode():
            return model(torch.tensor(rows, dtype=torch.float32)).tolist()

    return forward


@bentoml.service(workers=WORKERS)
class Peer:
    def __init__(self) -> None:
        self.predict_rows = load_predict(os.environ["PEER_MODEL_PATH"])

    @bentoml.api
    def predict(self, data: list) -> list:
        return self.predict_rows(data)
