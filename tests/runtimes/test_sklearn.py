"""sklearn, sklearn_classifier, sklearn_preprocessor and the scaler -> classifier flow."""
from __future__ import annotations

import sys

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from conduit.errors import InputError, ModelLoadError
from conduit.runtimes.pickles import VersionMismatchWarning, missing_module_hint

from .helpers import IRIS_POINTS, load_flow, save_pickle


@pytest.fixture()
def classifier_pkl(tmp_path, iris):
    model = LogisticRegression(max_iter=300).fit(*iris)
    return model, save_pickle(tmp_path / "model.pkl", model)


def test_sklearn_regressor_calls_predict(tmp_path, diabetes):
    model = Ridge().fit(*diabetes)
    save_pickle(tmp_path / "model.pkl", model)
    result = load_flow(tmp_path, [{"model_type": "sklearn", "path": "model.pkl"}]).predict(diabetes[0][:5].tolist())
    np.testing.assert_allclose(result, model.predict(diabetes[0][:5]), rtol=1e-12)


def test_sklearn_classifier_returns_probability_rows(tmp_path, classifier_pkl):
    model, _ = classifier_pkl
    result = load_flow(tmp_path, [("sklearn_classifier", "model.pkl")]).predict(IRIS_POINTS)
    assert len(result) == 3 and len(result[0]) == 3
    np.testing.assert_allclose(result, model.predict_proba(np.array(IRIS_POINTS)), rtol=1e-12)


@pytest.mark.parametrize("compress", [0, 3], ids=["plain", "compressed"])
def test_a_model_saved_with_joblib_dump_serves(tmp_path, iris, compress):
    """joblib.dump is scikit-learn's own advice for saving a model: its files are not plain pickles."""
    import joblib

    model = LogisticRegression(max_iter=300).fit(*iris)
    joblib.dump(model, tmp_path / "model.pkl", compress=compress)
    result = load_flow(tmp_path, [("sklearn_classifier", "model.pkl")]).predict(IRIS_POINTS)
    np.testing.assert_allclose(result, model.predict_proba(np.array(IRIS_POINTS)), rtol=1e-12)


def test_single_data_point_gets_a_batch_axis(tmp_path, classifier_pkl):
    model, _ = classifier_pkl
    result = load_flow(tmp_path, [("sklearn_classifier", "model.pkl")]).predict(IRIS_POINTS[0])
    assert len(result) == 1
    np.testing.assert_allclose(result[0], model.predict_proba([IRIS_POINTS[0]])[0], rtol=1e-12)


def test_preprocessor_feeds_classifier(tmp_path, iris):
    scaler = StandardScaler().fit(iris[0])
    model = LogisticRegression(max_iter=300).fit(scaler.transform(iris[0]), iris[1])
    save_pickle(tmp_path / "scaler.pkl", scaler)
    save_pickle(tmp_path / "model.pkl", model)
    flow = load_flow(tmp_path, [("sklearn_preprocessor", "scaler.pkl"), ("sklearn_classifier", "model.pkl")])
    expected = model.predict_proba(scaler.transform(np.array(IRIS_POINTS)))
    np.testing.assert_allclose(flow.predict(IRIS_POINTS), expected, rtol=1e-12)


def test_preprocessor_alone_returns_transformed_rows(tmp_path, iris):
    scaler = StandardScaler().fit(iris[0])
    save_pickle(tmp_path / "scaler.pkl", scaler)
    result = load_flow(tmp_path, [("sklearn_preprocessor", "scaler.pkl")]).predict(IRIS_POINTS)
    np.testing.assert_allclose(result, scaler.transform(np.array(IRIS_POINTS)), rtol=1e-12)


def test_regressor_declared_as_classifier_fails_at_load(tmp_path, diabetes):
    save_pickle(tmp_path / "model.pkl", LinearRegression().fit(*diabetes))
    with pytest.raises(ModelLoadError) as raised:
        load_flow(tmp_path, [("sklearn_classifier", "model.pkl")])
    assert str(raised.value) == (
        "flow[0] (sklearn_classifier): LinearRegression has no predict_proba(), which model_type "
        "sklearn_classifier calls: declare model_type sklearn to call predict, or save a classifier"
    )


def test_wrong_number_of_features_is_a_422_with_both_shapes(tmp_path, classifier_pkl):
    flow = load_flow(tmp_path, [("sklearn_classifier", "model.pkl")])
    with pytest.raises(InputError) as raised:
        flow.predict([[1.0, 2.0, 3.0]])
    assert raised.value.http_status == 422
    assert str(raised.value) == (
        "flow[0] (sklearn_classifier): expected shape [N, 4] (N data points of 4 features), received [1, 3]"
    )


def test_strings_for_a_numeric_model_are_a_422(tmp_path, classifier_pkl):
    flow = load_flow(tmp_path, [("sklearn_classifier", "model.pkl")])
    with pytest.raises(InputError, match=r"expected numbers of dtype float64, received shape \[1, 4\] of strings"):
        flow.predict([["a", "b", "c", "d"]])


def test_ragged_rows_are_a_422(tmp_path, classifier_pkl):
    flow = load_flow(tmp_path, [("sklearn_classifier", "model.pkl")])
    with pytest.raises(InputError, match=r"received shape \[2, 'ragged'\] of numbers"):
        flow.predict([[1, 2, 3, 4], [1, 2]])


def test_missing_artifact_names_the_path(tmp_path):
    with pytest.raises(ModelLoadError) as raised:
        load_flow(tmp_path, [("sklearn", "nope.pkl")])
    assert str(raised.value) == f"flow[0] (sklearn): artifact not found: {tmp_path / 'nope.pkl'}"


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "model.pkl").mkdir()
    with pytest.raises(ModelLoadError, match=r"model\.pkl is a folder; this model type expects a file"):
        load_flow(tmp_path, [("sklearn", "model.pkl")])


def test_truncated_pickle_is_unreadable(tmp_path, classifier_pkl):
    _, path = classifier_pkl
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelLoadError, match=r"flow\[0\] \(sklearn_classifier\): model\.pkl is not a readable pickle"):
        load_flow(tmp_path, [("sklearn_classifier", "model.pkl")])


@pytest.mark.skipif(sys.platform == "win32" or __import__("os").geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path, classifier_pkl):
    _, path = classifier_pkl
    path.chmod(0)
    with pytest.raises(ModelLoadError, match="cannot read artifact .*model.pkl: Permission denied"):
        load_flow(tmp_path, [("sklearn_classifier", "model.pkl")])


def test_pickle_needing_a_missing_module_names_it(tmp_path, monkeypatch):
    module_dir = tmp_path / "src"
    module_dir.mkdir()
    (module_dir / "house_prices_features.py").write_text(
        "class Doubler:\n    def predict(self, rows):\n        return [[2 * v for v in row] for row in rows]\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    import house_prices_features

    save_pickle(tmp_path / "model.pkl", house_prices_features.Doubler())
    monkeypatch.delitem(sys.modules, "house_prices_features")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(module_dir)])
    with pytest.raises(ModelLoadError) as raised:
        load_flow(tmp_path, [("sklearn", "model.pkl")])
    assert str(raised.value) == (
        "flow[0] (sklearn): model.pkl needs the Python module 'house_prices_features', which is not installed: "
        "add the package that provides 'house_prices_features' to requirements_file (or pip install it)"
    )


def test_missing_framework_module_names_the_extra():
    assert missing_module_hint("xgboost.sklearn") == "pip install 'conduit-deploy[xgboost]'"
    assert missing_module_hint("transformers") == "pip install 'conduit-deploy[huggingface]'"


def test_pickle_from_another_sklearn_version_warns_with_both_versions(tmp_path, classifier_pkl):
    _, path = classifier_pkl
    current = sklearn.__version__.encode()
    other = b"0." + b"9" * (len(current) - 2)  # same length keeps the pickle's framing valid
    raw = path.read_bytes()
    assert current in raw
    path.write_bytes(raw.replace(current, other))
    with pytest.warns(VersionMismatchWarning) as caught:
        load_flow(tmp_path, [("sklearn_classifier", "model.pkl")])
    assert str(caught[0].message) == (
        f"model.pkl was written by scikit-learn {other.decode()} but scikit-learn {sklearn.__version__} is "
        f"installed: predictions may be wrong. Pin scikit-learn {other.decode()} in requirements_file, "
        "or retrain and save again."
    )


def test_text_pipeline_takes_strings(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    texts, labels = ["good film", "great film", "bad film", "awful film"], [1, 1, 0, 0]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    save_pickle(tmp_path / "model.pkl", model)
    result = load_flow(tmp_path, [("sklearn_classifier", "model.pkl")]).predict(["good one", "awful one"])
    np.testing.assert_allclose(result, model.predict_proba(["good one", "awful one"]), rtol=1e-12)
