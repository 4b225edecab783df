"""`conduit.artifacts`: what a model file holds, read without running it."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from conduit.artifacts import inspect_artifact, model_type_of
from conduit.manifest import load

POINTS, LABELS = [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], [0, 1, 0, 1]


class RunsWhenUnpickled:
    """Unpickling this calls exec: a file made of it must be read, never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_reading_a_pickle_never_runs_it(tmp_path: Path):
    marker = tmp_path / "ran"
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(RunsWhenUnpickled(marker)))
    artifact = inspect_artifact(tmp_path / "model.pkl")
    (tmp_path / "conduit.yaml").write_text("name: safe\nflow: [sklearn, model.pkl]\n")
    assert load(tmp_path).flow[0].path == "model.pkl"
    assert artifact is not None and artifact.modules == ("builtins",) and artifact.problem is None
    assert not marker.exists()


def test_a_pipelines_last_step_decides_even_when_it_holds_regressors(tmp_path: Path):
    pytest.importorskip("sklearn")
    from sklearn.ensemble import GradientBoostingClassifier  # its trees are DecisionTreeRegressors
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=2)).fit(POINTS, LABELS)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model, protocol=2))
    artifact = inspect_artifact(tmp_path / "model.pkl")
    assert artifact is not None
    assert (artifact.estimator, artifact.role) == ("sklearn.ensemble._gb.GradientBoostingClassifier", "classifier")
    assert model_type_of(artifact).value == "sklearn_classifier"
    import sklearn

    assert artifact.versions == {"scikit-learn": sklearn.__version__}


def test_without_importing_scikit_learn_the_class_name_decides(tmp_path: Path):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression, Ridge

    (tmp_path / "logistic.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(POINTS, LABELS)))
    (tmp_path / "ridge.pkl").write_bytes(pickle.dumps(Ridge().fit(POINTS, LABELS)))
    assert inspect_artifact(tmp_path / "logistic.pkl", import_classes=False).role == "classifier"
    assert inspect_artifact(tmp_path / "ridge.pkl", import_classes=False).role is None
    assert inspect_artifact(tmp_path / "ridge.pkl").role == "predictor"  # scikit-learn, asked, says so


def test_an_xgboost_pickle_is_xgboost_even_inside_a_pipeline(tmp_path: Path):
    pytest.importorskip("sklearn")
    xgboost = pytest.importorskip("xgboost")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), xgboost.XGBClassifier(n_estimators=2)).fit(POINTS, LABELS)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    artifact = inspect_artifact(tmp_path / "model.pkl")
    assert (artifact.framework, artifact.estimator) == ("xgboost", "xgboost.sklearn.XGBClassifier")
    assert model_type_of(artifact).value == "xgboost_classifier"


def test_files_that_hold_no_model(tmp_path: Path):
    (tmp_path / "package.json").write_text('{"name": "web"}')
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "config.json").write_text('{"colour": "blue"}')
    assert inspect_artifact(tmp_path / "package.json") is None
    assert inspect_artifact(tmp_path / "notes") is None
    assert inspect_artifact(tmp_path / "missing.pkl") is None


def test_joblib_arrays_are_stepped_over_so_a_joblib_pipeline_is_read_to_its_last_step(tmp_path: Path):
    pytest.importorskip("sklearn")
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=2, random_state=0)).fit(POINTS, LABELS)
    model.notes = np.array(["a", 1], dtype=object)  # an object array: joblib nests a pickle for it
    joblib.dump(model, tmp_path / "model.pkl")
    artifact = inspect_artifact(tmp_path / "model.pkl")
    assert (artifact.format, artifact.estimator, artifact.role, artifact.problem) == (
        "joblib", "sklearn.ensemble._forest.RandomForestClassifier", "classifier", None
    )


def test_a_big_xgboost_ubj_classifier_is_told_by_its_objective_near_the_end(tmp_path, monkeypatch):
    """XGBoost writes keys sorted, so `objective` follows the trees: a model bigger than the bytes
    scanned must be read at its end too (here the scan is made small instead of the model big)."""
    xgboost = pytest.importorskip("xgboost")
    import numpy as np

    from conduit.artifacts import formats

    features = np.random.default_rng(0).random((200, 4))
    model = xgboost.XGBClassifier(n_estimators=20).fit(features, (features[:, 0] > 0.5).astype(int))
    model.save_model(tmp_path / "model.ubj")
    monkeypatch.setattr(formats, "UBJ_SCAN_BYTES", 512)
    assert (tmp_path / "model.ubj").stat().st_size > 512 * 4
    assert formats.inspect_xgboost_ubj(tmp_path / "model.ubj").role == "classifier"
