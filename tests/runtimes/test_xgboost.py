"""xgboost_regressor / xgboost_classifier from .pkl, .json and .ubj."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

xgboost = pytest.importorskip("xgboost")
from xgboost import XGBClassifier, XGBRegressor

from conduit.errors import ModelLoadError
from conduit.runtimes.pickles import VersionMismatchWarning, saved_xgboost_version

from .helpers import IRIS_POINTS, load_flow, save_pickle


@pytest.fixture(scope="module")
def regressor(diabetes):
    return XGBRegressor(n_estimators=10, max_depth=3, n_jobs=1, random_state=0).fit(*diabetes)


@pytest.fixture(scope="module")
def classifier(iris):
    return XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1, random_state=0).fit(*iris)


def save(model, path):
    if path.suffix == ".pkl":
        save_pickle(path, model)
    else:
        model.save_model(path)


@pytest.mark.parametrize("suffix", [".pkl", ".json", ".ubj"])
def test_regressor_predicts_like_xgboost(tmp_path, diabetes, regressor, suffix):
    save(regressor, tmp_path / f"model{suffix}")
    points = diabetes[0][:4]
    result = load_flow(tmp_path, [("xgboost_regressor", f"model{suffix}")]).predict(points.tolist())
    np.testing.assert_allclose(result, regressor.predict(points), rtol=1e-6)


@pytest.mark.parametrize("suffix", [".pkl", ".json", ".ubj"])
def test_classifier_returns_probabilities(tmp_path, classifier, suffix):
    save(classifier, tmp_path / f"model{suffix}")
    result = load_flow(tmp_path, [("xgboost_classifier", f"model{suffix}")]).predict(IRIS_POINTS)
    np.testing.assert_allclose(result, classifier.predict_proba(np.array(IRIS_POINTS)), rtol=1e-6)
    assert np.allclose(np.sum(result, axis=1), 1.0)


def test_regressor_json_declared_as_classifier_is_refused(tmp_path, regressor):
    regressor.save_model(tmp_path / "model.json")
    with pytest.raises(ModelLoadError) as raised:
        load_flow(tmp_path, [("xgboost_classifier", "model.json")])
    assert str(raised.value) == (
        "flow[0] (xgboost_classifier): the model's objective is reg:squarederror, a regression objective, "
        "but model_type xgboost_classifier calls predict_proba: declare model_type xgboost_regressor"
    )


def test_regressor_pickle_declared_as_classifier_is_refused(tmp_path, regressor):
    save_pickle(tmp_path / "model.pkl", regressor)
    with pytest.raises(ModelLoadError) as raised:
        load_flow(tmp_path, [("xgboost_classifier", "model.pkl")])
    assert str(raised.value) == (
        "flow[0] (xgboost_classifier): XGBRegressor has no predict_proba(), which model_type xgboost_classifier "
        "calls: declare model_type xgboost_regressor, or save a classifier"
    )


def test_file_that_is_not_an_xgboost_model(tmp_path):
    (tmp_path / "model.json").write_text('{"hello": "world"}')
    with pytest.raises(ModelLoadError, match=r"flow\[0\] \(xgboost_regressor\): model\.json is not an XGBoost model file"):
        load_flow(tmp_path, [("xgboost_regressor", "model.json")])


def test_pickle_from_another_xgboost_version_warns_with_both_versions(tmp_path, classifier):
    raw = pickle.dumps(classifier)
    major, minor, patch = (int(part) for part in xgboost.__version__.split(".")[:3])
    ubj_version = b"version[#L" + b"\x00" * 7 + b"\x03"
    current = ubj_version + bytes([ord("i"), major, ord("i"), minor, ord("i"), patch])
    older = ubj_version + bytes([ord("i"), 1, ord("i"), 7, ord("i"), 0])
    assert current in raw
    (tmp_path / "model.pkl").write_bytes(raw.replace(current, older))
    assert saved_xgboost_version((tmp_path / "model.pkl").read_bytes()) == "1.7.0"
    with pytest.warns(VersionMismatchWarning) as caught:
        load_flow(tmp_path, [("xgboost_classifier", "model.pkl")])
    assert str(caught[0].message) == (
        f"model.pkl was written by XGBoost 1.7.0 but XGBoost {xgboost.__version__} is installed: predictions may "
        "be wrong. Pin XGBoost 1.7.0 in requirements_file, or retrain and save again."
    )
