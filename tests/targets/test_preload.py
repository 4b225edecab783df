"""What the fork server imports ahead of a Bento's workers: read from real pickles and real renders,
without unpickling anything or importing a framework."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from conduit.render import render
from conduit.targets.local.bentoml_serving import bento_folder
from conduit.targets.local.preload import pickled_modules, worker_preparation
from serving.trained import iris_folder, torch_folder

POINTS, LABELS = [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], [0, 1, 0, 1]


def test_a_pickle_names_the_modules_of_the_classes_it_holds(tmp_path):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(POINTS, LABELS)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(pipeline))
    modules = pickled_modules(path)
    assert {"sklearn.pipeline", "sklearn.preprocessing._data", "sklearn.linear_model._logistic"} <= set(modules)
    assert not [module for module in modules if module.startswith(("builtins", "copyreg"))]


def test_a_joblib_file_is_read_up_to_its_first_raw_array(tmp_path):
    pytest.importorskip("sklearn")
    import joblib  # installed with sklearn
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "model.joblib.pkl"
    joblib.dump(LogisticRegression().fit(POINTS, LABELS), path)
    assert pickled_modules(path)[0] == "sklearn.linear_model._logistic"


def test_an_old_protocol_pickle_is_read_too(tmp_path):
    StandardScaler = pytest.importorskip("sklearn.preprocessing").StandardScaler
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(StandardScaler(), protocol=2))
    assert "sklearn.preprocessing._data" in pickled_modules(path)


def test_what_is_not_a_pickle_names_nothing(tmp_path):
    StandardScaler = pytest.importorskip("sklearn.preprocessing").StandardScaler
    (tmp_path / "model.json").write_text('{"learner": {}}')
    (tmp_path / "truncated.pkl").write_bytes(pickle.dumps(StandardScaler())[:20])
    assert pickled_modules(tmp_path / "model.json") == []
    assert pickled_modules(tmp_path / "missing.pkl") == []
    assert pickled_modules(tmp_path / "truncated.pkl") == []


def test_a_rendered_cpu_bento_names_its_framework_and_one_math_thread_per_worker(tmp_path):
    rendered = render(iris_folder(tmp_path / "src", cpu=2), tmp_path / "out")
    modules, thread_env = worker_preparation(rendered.path)
    assert modules[0] == "sklearn" and "sklearn.linear_model._logistic" in modules
    assert thread_env == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    # The same values as the generated service.py gives each worker.
    assert 'os.environ.setdefault(_variable, "1")' in (rendered.path / "service.py").read_text()


def test_a_gpu_bento_gives_its_one_worker_every_core(tmp_path):
    manifest = torch_folder(tmp_path / "src").model_copy(update={"cpu": 2})
    rendered = render(manifest, tmp_path / "out")
    modules, thread_env = worker_preparation(rendered.path)
    assert modules[0] == "torch" and "torch.nn.modules.linear" in modules
    assert set(thread_env.values()) == {"2"}
    assert 'os.environ.setdefault(_variable, "2")' in (rendered.path / "service.py").read_text()


def test_a_folder_that_is_not_a_conduit_bento_needs_nothing(tmp_path):
    assert worker_preparation(tmp_path) == ([], {})
    assert bento_folder("iris:abc123", "/home/b") / "src" == Path("/home/b/bentos/iris/abc123/src")
