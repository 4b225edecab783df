"""JSON <-> arrays and model outputs -> JSON, one result per data point."""
from __future__ import annotations

import numpy as np
import pytest

from conduit.errors import InputError
from conduit.runtimes import convert


@pytest.mark.parametrize(
    ("data", "count"),
    [
        ([5.1, 3.5, 1.4, 0.2], 1),
        ([[5.1, 3.5], [1.4, 0.2]], 2),
        (["a text", "another"], 2),
        ("one text", 1),
        ({"question": "q", "context": "c"}, 1),
        ([{"a": 1}, {"a": 2}, {"a": 3}], 3),
        (np.zeros((4, 2)), 4),
        (None, None),
        ([], 0),
    ],
)
def test_count_points(data, count):
    assert convert.count_points(data) == count


def test_a_one_dimensional_tensor_is_one_point():
    torch = pytest.importorskip("torch")
    assert convert.count_points(torch.zeros(3)) == 1


def test_single_point_gets_a_batch_axis():
    array = convert.to_array([5.1, 3.5, 1.4, 0.2])
    assert array.shape == (1, 4) and array.dtype == np.float32


def test_batch_keeps_its_rank_and_takes_the_dtype():
    array = convert.to_array([[[1, 2]], [[3, 4]]], np.float64)
    assert array.shape == (2, 1, 2) and array.dtype == np.float64


def test_scalar_is_not_a_batch():
    with pytest.raises(InputError, match="expected a list of data points, received a single value int 3"):
        convert.to_array(3)


def test_a_tensor_output_becomes_plain_json():
    torch = pytest.importorskip("torch")
    output = {"labels": np.array([1, 2]), "scores": torch.tensor([[0.5], [0.25]])}
    assert convert.to_rows(output) == [{"labels": 1, "scores": [0.5]}, {"labels": 2, "scores": [0.25]}]


def test_outputs_become_plain_json():
    assert convert.to_rows((np.array([1, 2]), np.array([3.0, 4.0]))) == [[1, 3.0], [2, 4.0]]
    assert convert.to_rows(np.float32(0.5)) == [0.5]
    assert convert.to_rows([{"label": "POS", "score": np.float32(0.5)}]) == [{"label": "POS", "score": 0.5}]
    assert type(convert.to_rows(np.array([1], dtype=np.int64))[0]) is int


def test_describe_never_dumps_the_payload():
    assert convert.describe(np.zeros((2, 3), dtype=np.float32)) == "shape [2, 3] float32"
    assert convert.describe([[1, "a"]]) == "shape [1, 2] of numbers and strings"
    long_text = convert.describe("x" * 500)
    assert long_text.startswith("a string 'xxx") and long_text.endswith("...") and len(long_text) < 80
