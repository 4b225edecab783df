"""Train a 2-layer MLP on iris with PyTorch and write it as an ONNX graph, model.onnx (a few seconds).

The graph is built with onnx.helper from the trained weights (Gemm -> Relu -> Gemm -> Softmax)
rather than torch.onnx.export, whose default exporter needs the extra onnxscript package.
The input is declared as float32 [N, 4]: conduit reads that and casts JSON numbers to it.
hardware is set to CPU: the pip onnxruntime wheel is CPU-only, and the model is tiny.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris

HERE = Path(__file__).resolve().parent


def train_mlp() -> torch.nn.Sequential:
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


def to_onnx(model: torch.nn.Sequential) -> onnx.ModelProto:
    first, _, second = model
    weights = {
        "w1": first.weight, "b1": first.bias, "w2": second.weight, "b2": second.bias,
    }
    initializers = [numpy_helper.from_array(t.detach().numpy().astype(np.float32), name) for name, t in weights.items()]
    nodes = [
        helper.make_node("Gemm", ["features", "w1", "b1"], ["hidden"], transB=1),
        helper.make_node("Relu", ["hidden"], ["activated"]),
        helper.make_node("Gemm", ["activated", "w2", "b2"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "iris_mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
        initializers,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8  # readable by onnxruntime releases of the last few years
    onnx.checker.check_model(onnx_model)
    return onnx_model


def main() -> None:
    onnx.save(to_onnx(train_mlp()), HERE / "model.onnx")
    print(f"wrote {HERE / 'model.onnx'}")


if __name__ == "__main__":
    main()
