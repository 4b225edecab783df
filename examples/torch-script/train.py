"""Train a 2-layer MLP on iris, compile it with TorchScript and save it as model.pt (a few seconds).

A `.pt` artifact must be TorchScript (`torch.jit.script(model).save(path)`): it loads without the
Python class that defined the model. The output is softmax probabilities, three per flower.
hardware is set to CPU: a model this small gains nothing from a GPU, and CPU replicas are cheaper.
"""
from __future__ import annotations

from pathlib import Path

import torch
from sklearn.datasets import load_iris

HERE = Path(__file__).resolve().parent


def main() -> None:
    torch.manual_seed(0)
    features, labels = load_iris(return_X_y=True)
    inputs, targets = torch.tensor(features, dtype=torch.float32), torch.tensor(labels)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=-1)).eval()
    torch.jit.script(model).save(str(HERE / "model.pt"))
    print(f"wrote {HERE / 'model.pt'}")


if __name__ == "__main__":
    main()
