"""onnx: inputs read from the model, cast to the declared dtype, checked against the declared shape."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper

from conduit.errors import InputError, ModelLoadError
from conduit.runtimes.flow import Flow

from .helpers import IRIS_POINTS, load_flow, make_manifest


def linear_model(path, in_features=4, out_features=3, seed=0):
    """y = softmax(x @ W + b), declared float32 [N, in_features]."""
    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(size=(in_features, out_features)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(out_features,)).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_features])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def two_input_model(path):
    """sum = a + b, and product = a * b, for a, b float64 [N, 2]."""
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["product"])]
    io = lambda name: helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N", 2])  # noqa: E731
    graph = helper.make_graph(nodes, "pair", [io("a"), io("b")], [io("sum"), io("product")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_matches_onnxruntime_and_casts_to_float32(tmp_path):
    linear_model(tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": np.array(IRIS_POINTS, dtype=np.float32)})[0]
    result = load_flow(tmp_path, [("onnx", "model.onnx")]).predict(IRIS_POINTS)
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_integers_and_a_single_point_are_accepted(tmp_path):
    linear_model(tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": np.array([[5, 3, 1, 0]], dtype=np.float32)})[0]
    result = load_flow(tmp_path, [("onnx", "model.onnx")]).predict([5, 3, 1, 0])
    assert len(result) == 1
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_wrong_shape_is_a_422_with_both_shapes(tmp_path):
    linear_model(tmp_path / "model.onnx")
    flow = load_flow(tmp_path, [("onnx", "model.onnx")])
    with pytest.raises(InputError) as raised:
        flow.predict([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert raised.value.http_status == 422
    assert str(raised.value) == "flow[0] (onnx): input 'x' expected shape [N, 4] (N data points), received [2, 3]"


def test_wrong_dtype_is_a_422(tmp_path):
    linear_model(tmp_path / "model.onnx")
    with pytest.raises(InputError, match=r"input 'x' expects float32, received shape \[1, 4\] of strings"):
        load_flow(tmp_path, [("onnx", "model.onnx")]).predict([["a", "b", "c", "d"]])


def test_several_inputs_take_one_object_per_point_and_return_named_outputs(tmp_path):
    two_input_model(tmp_path / "pair.onnx")
    flow = load_flow(tmp_path, [("onnx", "pair.onnx")])
    result = flow.predict([{"a": [1, 2], "b": [3, 4]}, {"a": [0.5, 1], "b": [2, 2]}])
    assert result == [{"sum": [4.0, 6.0], "product": [3.0, 8.0]}, {"sum": [2.5, 3.0], "product": [1.0, 2.0]}]
    with pytest.raises(InputError, match="send one object per data point with key 'a'"):
        flow.predict([[1, 2]])


def test_file_that_is_not_onnx(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=r"flow\[0\] \(onnx\): model\.onnx is not a loadable ONNX model \("):
        load_flow(tmp_path, [("onnx", "model.onnx")])


@pytest.mark.gpu
def test_gpu_hardware_uses_the_cuda_provider(tmp_path):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime here is the CPU build (install onnxruntime-gpu for CUDA)")
    linear_model(tmp_path / "model.onnx")
    flow = Flow.load(make_manifest(tmp_path, [("onnx", "model.onnx")], hardware="AMPERE_A5000"))
    assert flow.stages[0].runtime.model.get_providers()[0] == "CUDAExecutionProvider"
    assert len(flow.predict(IRIS_POINTS)) == 3
