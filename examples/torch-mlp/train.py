"""Train a 2-layer MLP on iris and save the whole module with cloudpickle as model.pkl (a few seconds).

model_type torch returns the network's output: three logits per flower.
Hardware stays at the torch default, AMPERE_A5000: this is the example that shows a GPU
deployment. On a machine without CUDA `conduit run` runs it on the CPU and warns once.
"""
from __future__ import annotations

from pathlib import Path

import cloudpickle
import torch
from sklearn.datasets import load_iris

HERE = Path(__file__).resolve().parent


def train_mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    features, labels = load_iris(return_X_y=True)
    inputs, targets = torch.tensor(features, dtype=torch.float32), torch.tensor(labels)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    return model.eval()


def main() -> None:
    model = train_mlp()
    with open(HERE / "model.pkl", "wb") as handle:
        cloudpickle.dump(model, handle)
    print(f"wrote {HERE / 'model.pkl'}")


if __name__ == "__main__":
    main()
