"""Issue 16 item 9: input numpy would coerce (null -> NaN, "5.1" -> 5.1) and outputs with no JSON
form (NaN, infinity -> null) are 422s, unless a hook decides otherwise. Real models throughout."""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn")
from sklearn.ensemble import RandomForestClassifier

from conduit.errors import InputError

from .helpers import IRIS_POINTS, load_flow, save_pickle

HOOKS = '''
import numpy as np


def nulls_to_zero(data):
    return [[0.0 if value is None else value for value in row] for row in data]


def parse_strings(data):
    return [[float(value) for value in row] for row in data]


def clip(output):
    return np.nan_to_num(output, nan=0.0, posinf=1.0, neginf=-1.0)


def keep(output):
    return output
'''

NULL_IN_A_ROW = [[None, 3.5, 1.4, 0.2]]
NUMERIC_STRINGS = [["5.1", "3.5", "1.4", "0.2"]]


@pytest.fixture(scope="module")
def forest_folder(tmp_path_factory, iris):
    folder = tmp_path_factory.mktemp("forest")
    save_pickle(folder / "forest.pkl", RandomForestClassifier(n_estimators=5, random_state=0).fit(*iris))
    (folder / "hooks.py").write_text(HOOKS)
    return folder


def forest(folder, **hooks):
    return load_flow(folder, [{"model_type": "sklearn_classifier", "path": "forest.pkl", **hooks}])


@pytest.mark.parametrize(
    "data, hint",
    [
        (NULL_IN_A_ROW, "a null is not a number: fill it in, or add a pre hook that does"),
        ([None], "a null is not a number"),
        ([None, None, None, None], "a null is not a number"),
        (NUMERIC_STRINGS, "numbers as strings are not converted: send them as JSON numbers"),
        ([[5.1, "3.5", 1.4, 0.2]], "numbers as strings are not converted"),
        ([[{"a": 1}, 3.5, 1.4, 0.2]], "received shape [1, 4] of numbers and objects"),
    ],
)
def test_a_random_forest_refuses_what_numpy_would_coerce(forest_folder, data, hint):
    with pytest.raises(InputError) as caught:
        forest(forest_folder).predict(data)
    assert "expected numbers of dtype float64" in str(caught.value) and hint in str(caught.value)


def test_numbers_booleans_and_integers_still_work(forest_folder):
    flow = forest(forest_folder)
    assert flow.predict([[5, 3, 1, 0]]) == flow.predict([[5.0, 3.0, 1.0, 0.0]])
    assert len(flow.predict([[True, 3.5, 1.4, 0.2]])) == 1
    assert len(flow.predict(IRIS_POINTS)) == 3


@pytest.mark.parametrize("data, hook", [(NULL_IN_A_ROW, "hooks.py:nulls_to_zero"), (NUMERIC_STRINGS, "hooks.py:parse_strings")])
def test_a_pre_hook_may_take_them_and_its_output_is_what_is_checked(forest_folder, data, hook):
    assert len(forest(forest_folder, pre=hook).predict(data)) == 1


@pytest.fixture(scope="module")
def torch_folder(tmp_path_factory):
    torch = pytest.importorskip("torch")
    import cloudpickle

    folder = tmp_path_factory.mktemp("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    (folder / "net.pkl").write_bytes(cloudpickle.dumps(net))
    (folder / "hooks.py").write_text(HOOKS)
    return folder


def net(folder, **hooks):
    return load_flow(folder, [{"model_type": "torch", "path": "net.pkl", **hooks}])


@pytest.mark.parametrize("data", [[[None, 1.0, 2.0]], [None, 1.0, 2.0], [["1", "2", "3"]]])
def test_torch_refuses_nulls_and_strings(torch_folder, data):
    with pytest.raises(InputError, match=r"^flow\[0\] \(torch\): expected numbers of dtype float64, received "):
        net(torch_folder).predict(data)


def test_an_input_that_overflows_float32_is_a_non_finite_output(torch_folder):
    with pytest.raises(InputError) as caught:
        net(torch_folder).predict([[1e308, 1.0, 2.0]])
    assert str(caught.value) == (
        "flow[0] (torch): the model returned a non-finite value (NaN or infinity) 2 time(s) for input "
        "shape [1, 3] of numbers: check that the input is in the range the model was trained on, "
        "or add a post hook that handles such values"
    )


def test_a_post_hook_that_handles_non_finite_outputs_is_obeyed(torch_folder):
    result = net(torch_folder, post="hooks.py:clip").predict([[1e308, 1.0, 2.0]])
    assert len(result) == 1 and all(value in (0.0, 1.0, -1.0) for value in result[0])


def test_a_post_hook_that_keeps_them_is_named(torch_folder):
    with pytest.raises(InputError, match=r"the post hook hooks.py:keep returned a non-finite value"):
        net(torch_folder, post="hooks.py:keep").predict([[1e308, 1.0, 2.0]])


def test_finite_torch_outputs_are_unchanged(torch_folder):
    assert len(net(torch_folder).predict([[1e30, 1.0, 2.0], [0.5, 1.0, 2.0]])) == 2


def test_text_models_still_take_strings(tmp_path):
    """The check is for numeric model types: a text pipeline (a vectorizer first) gets its strings."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = ["good film", "great film", "bad film", "awful film"], [1, 1, 0, 0]
    save_pickle(tmp_path / "text.pkl", make_pipeline(CountVectorizer(), LogisticRegression()).fit(texts, labels))
    assert len(load_flow(tmp_path, [("sklearn_classifier", "text.pkl")]).predict(["good", "5.1"])) == 2
