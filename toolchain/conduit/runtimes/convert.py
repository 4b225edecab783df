"""Every conversion between JSON and model inputs/outputs, in one place.

Inputs: the request's `data` is a JSON array of data points. A single data point (a flat list of
numbers such as `[5.1, 3.5, 1.4, 0.2]`, or one string) gets a batch axis, so models always see a
batch and the response always has one result per data point.

Outputs: numpy arrays and scalars, torch tensors, spaCy Docs and Hugging Face dicts/lists become
plain JSON values, one per data point. No framework is imported here: objects are recognised by
the methods they have.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from conduit.errors import InputError


def is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Number) and not isinstance(value, bool)) or isinstance(value, np.number)


def count_points(data: Any) -> Optional[int]:
    """How many data points a request holds (None when there is no data, e.g. files only)."""
    if data is None:
        return None
    if _is_tensor(data):
        data = data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        return 1 if data.ndim <= 1 else int(data.shape[0])
    if isinstance(data, (list, tuple)):
        return 1 if data and all(is_number(item) for item in data) else len(data)
    return 1


def count_rows(value: Any) -> Optional[int]:
    """How many data points a `pre` hook's output holds: a list, array or tensor counts as
    `count_points` does, a dict or tuple of batch arrays (a tokenizer's) by their first axis;
    None when the value does not say (a dict of options, an object)."""
    columns = list(value.values()) if isinstance(value, dict) else value if isinstance(value, tuple) else None
    if columns and all(_batched(column) for column in columns):
        return int(columns[0].shape[0])  # as to_rows splits them
    if isinstance(value, (list, tuple, np.ndarray)) or _is_tensor(value):
        return count_points(value)
    return None


def to_array(data: Any, dtype: Any = np.float32) -> np.ndarray:
    """A batch array of `dtype` (rank >= 2); a single data point becomes a batch of one."""
    array = numeric_array(data, f"expected numbers of dtype {np.dtype(dtype).name}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf: the output check says so
        array = array.astype(dtype, copy=False)
    if array.ndim == 0:
        raise InputError(f"expected a list of data points, received a single value {describe(data)}")
    return array[np.newaxis, ...] if array.ndim == 1 else array


def numeric_array(data: Any, expects: str = "expected numbers of dtype float32") -> np.ndarray:
    """`data` as a numpy array of numbers (booleans count), refusing what numpy would coerce
    silently: a null would become NaN and "5.1" would become 5.1 (InputError, 422). A `pre` hook
    that wants either turns it into numbers itself; NaN already in an array (XGBoost's missing
    value) is the hook's choice and passes."""
    if _is_tensor(data):
        data = data.detach().cpu().numpy()
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged rows
        raise InputError(f"{expects}, received {describe(data)}") from exc
    if array.dtype.kind == "O" and all(is_number(item) for item in array.flat):
        return array  # Python ints beyond 64 bits: numbers, if unusual ones
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise InputError(f"{expects}, received {describe(data)}{_not_numbers_hint(array)}")
    return array


def non_finite_count(value: Any) -> int:
    """How many NaN or infinite numbers a model output holds (arrays, tensors, and the lists,
    tuples and dicts of them a runtime or hook returns); 0 for anything without floats."""
    if _is_tensor(value):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return int(value.size - np.count_nonzero(np.isfinite(value))) if value.dtype.kind in "fc" else 0
    if isinstance(value, (float, np.floating)):
        return 0 if math.isfinite(value) else 1
    if isinstance(value, dict):
        return sum(non_finite_count(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(non_finite_count(item) for item in value)
    return 0


def to_texts(data: Any) -> list[str]:
    """A list of strings, one per data point: text models take `"a text"` or `["a", "b"]`."""
    texts = [data] if isinstance(data, str) else data
    if not isinstance(texts, (list, tuple)) or not all(isinstance(text, str) for text in texts):
        raise InputError(f"expected text: a string or a list of strings, received {describe(data)}")
    return list(texts)


def to_items(data: Any) -> list[Any]:
    """Data points as a list, for models that take any JSON value per point (Hugging Face tasks)."""
    if isinstance(data, (list, tuple)) and count_points(data) == len(data):
        return list(data)
    return [data]


def check_features(array: np.ndarray, expected: Optional[int]) -> np.ndarray:
    """Refuse a batch whose rows do not have the `expected` number of features (InputError, 422)."""
    if expected is not None and (array.ndim != 2 or array.shape[1] != expected):
        raise InputError(
            f"expected shape [N, {expected}] (N data points of {expected} features), received {list(array.shape)}"
        )
    return array


def describe(data: Any) -> str:
    """A short account of a value for error messages: its shape and kind, never the whole payload."""
    if _is_tensor(data) or isinstance(data, np.ndarray):
        return f"shape {list(data.shape)} {data.dtype}"
    if isinstance(data, str):
        return f"a string {_clip(repr(data))}"
    if isinstance(data, (list, tuple)):
        return f"shape {_list_shape(data)} of {_kinds(data)}"
    return f"{type(data).__name__} {_clip(repr(data))}"


def to_json(value: Any) -> Any:
    """Any model output as plain JSON (lists, dicts, str, float, int, bool, None)."""
    if _is_tensor(value):
        return value.detach().cpu().tolist()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if _is_spacy_doc(value):
        return doc_to_json(value)
    return value


def to_rows(output: Any) -> list[Any]:
    """A stage's output as a list with one JSON value per data point.

    A tuple of batch arrays (a model with several outputs) or a dict of them becomes one list or
    dict per data point.
    """
    if isinstance(output, dict) and output and all(_batched(item) for item in output.values()):
        columns = {key: to_json(item) for key, item in output.items()}
        return [dict(zip(columns, row)) for row in zip(*columns.values())]
    if isinstance(output, tuple) and output and all(_batched(item) for item in output):
        return [list(row) for row in zip(*(to_json(item) for item in output))]
    rows = to_json(output)
    return rows if isinstance(rows, list) else [rows]


def doc_to_json(doc: Any) -> dict[str, Any]:
    """A spaCy Doc as JSON: its entities with character offsets, text categories and tokens."""
    return {
        "text": doc.text,
        "entities": [
            {"text": ent.text, "label": ent.label_, "start": ent.start_char, "end": ent.end_char} for ent in doc.ents
        ],
        "cats": {label: float(score) for label, score in doc.cats.items()},
        "tokens": [token.text for token in doc],
    }


def _batched(value: Any) -> bool:
    return (_is_tensor(value) or isinstance(value, np.ndarray)) and value.ndim >= 1


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _is_spacy_doc(value: Any) -> bool:
    return type(value).__name__ == "Doc" and hasattr(value, "ents") and hasattr(value, "cats")


def _list_shape(data: Sequence[Any]) -> list[Any]:
    shape: list[Any] = []
    while isinstance(data, (list, tuple)):
        lengths = {len(item) for item in data if isinstance(item, (list, tuple))}
        shape.append(len(data))
        if not data or len(lengths) > 1:
            if len(lengths) > 1:
                shape.append("ragged")
            break
        data = data[0]
    return shape


def _kinds(data: Any) -> str:
    kinds: set[str] = set()
    stack = [data]
    while stack and len(kinds) < 4:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item[:64])
        else:
            kinds.add("numbers" if is_number(item) else _KIND_NAMES.get(type(item), type(item).__name__ + " values"))
    return " and ".join(sorted(kinds)) or "nothing"


_KIND_NAMES = {str: "strings", bool: "booleans", dict: "objects", type(None): "nulls"}
_NUMERIC_KINDS = "biuf"  # numpy dtype kinds: bool, int, unsigned, float


def _not_numbers_hint(array: np.ndarray) -> str:
    """Why the values are refused, for the two cases numpy would have let through."""
    if array.dtype.kind in "US":
        return " (numbers as strings are not converted: send them as JSON numbers)"
    if array.dtype.kind == "O" and any(item is None for item in array.flat):
        return " (a null is not a number: fill it in, or add a pre hook that does)"
    return ""


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
