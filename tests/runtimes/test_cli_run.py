"""`conduit run`: prints exactly the result list, from inline JSON, @file, stdin or {"data", "parameters"}."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip("sklearn")  # every flow here runs a real sklearn model
from sklearn.linear_model import LogisticRegression

from conduit.cli.main import main

from .helpers import IRIS_POINTS, save_pickle, write_manifest


@pytest.fixture()
def iris_yaml(tmp_path, iris):
    model = LogisticRegression(max_iter=300).fit(*iris)
    save_pickle(tmp_path / "model.pkl", model)
    return write_manifest(tmp_path, [{"model_type": "sklearn_classifier", "path": "model.pkl"}]), model


def run(capsys, *args):
    code = main(["run", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inline_data_prints_the_result_list(capsys, iris_yaml):
    path, model = iris_yaml
    code, out, err = run(capsys, path, "--data", json.dumps(IRIS_POINTS))
    assert code == 0, err
    assert out.count("\n") == 1
    np.testing.assert_allclose(json.loads(out), model.predict_proba(np.array(IRIS_POINTS)), rtol=1e-12)


def test_data_from_a_file_with_parameters(capsys, iris_yaml, tmp_path):
    path, model = iris_yaml
    (tmp_path / "request.json").write_text(json.dumps({"data": IRIS_POINTS[0], "parameters": {}}))
    code, out, _ = run(capsys, path, "--data", f"@{tmp_path / 'request.json'}")
    assert code == 0
    np.testing.assert_allclose(json.loads(out), model.predict_proba([IRIS_POINTS[0]]), rtol=1e-12)


def test_data_from_stdin(capsys, iris_yaml, monkeypatch):
    path, model = iris_yaml
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(IRIS_POINTS[:2])))
    code, out, _ = run(capsys, path, "--data", "-")
    assert code == 0 and len(json.loads(out)) == 2


def test_invalid_json_is_a_usage_error(capsys, iris_yaml):
    path, _ = iris_yaml
    code, out, err = run(capsys, path, "--data", "[[1, 2")
    assert (code, out) == (2, "")
    assert err == "error: --data is not valid JSON: Expecting ',' delimiter at line 1 column 7\n"


def test_missing_data_file_is_a_usage_error(capsys, iris_yaml, tmp_path):
    path, _ = iris_yaml
    code, _, err = run(capsys, path, "--data", f"@{tmp_path / 'nope.json'}")
    assert code == 2 and "cannot read" in err and "No such file or directory" in err


def test_wrong_shape_fails_with_one_line(capsys, iris_yaml):
    path, _ = iris_yaml
    code, out, err = run(capsys, path, "--data", "[[1, 2, 3]]")
    assert (code, out) == (1, "")
    assert err == "error: flow[0] (sklearn_classifier): expected shape [N, 4] (N data points of 4 features), received [1, 3]\n"


def test_gpu_fallback_warning_goes_to_stderr_once(capsys, tmp_path, iris_mlp):
    import cloudpickle
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: no fallback")
    with open(tmp_path / "model.pkl", "wb") as handle:
        cloudpickle.dump(iris_mlp, handle)
    path = write_manifest(tmp_path, [{"model_type": "torch", "path": "model.pkl"}], hardware=None)
    code, out, err = run(capsys, path, "--data", json.dumps(IRIS_POINTS))
    assert code == 0 and len(json.loads(out)) == 3
    assert err.count("warning: hardware AMPERE_A5000 is a GPU but CUDA is not available here") == 1


CSV_HOOK = '''
def rows(data, files):
    """Each CSV line of the `table` file is a data point; `extra` rows in --data come after."""
    lines = files["table"].decode().splitlines() if "table" in files else []
    return [[float(value) for value in line.split(",")] for line in lines] + list(data or [])
'''


@pytest.fixture()
def csv_yaml(tmp_path, iris):
    model = LogisticRegression(max_iter=300).fit(*iris)
    save_pickle(tmp_path / "model.pkl", model)
    (tmp_path / "hooks.py").write_text(CSV_HOOK)
    (tmp_path / "rows.csv").write_text("\n".join(",".join(map(str, row)) for row in IRIS_POINTS))
    stage = {"model_type": "sklearn_classifier", "path": "model.pkl", "pre": "hooks.py:rows"}
    return write_manifest(tmp_path, [stage]), model


def test_files_reach_the_pre_hook_which_decides_the_data_points(capsys, csv_yaml, tmp_path):
    path, model = csv_yaml
    code, out, err = run(capsys, path, "--file", f"table={tmp_path / 'rows.csv'}")
    assert code == 0, err
    np.testing.assert_allclose(json.loads(out), model.predict_proba(np.array(IRIS_POINTS)), rtol=1e-12)
    code, out, err = run(capsys, path, "--file", f"table={tmp_path / 'rows.csv'}", "--data", json.dumps(IRIS_POINTS[:1]))
    assert code == 0 and len(json.loads(out)) == 4, err


def test_file_arguments_are_checked(capsys, csv_yaml, tmp_path):
    path, _ = csv_yaml
    _, _, err = run(capsys, path, "--file", "rows.csv")
    assert err == "error: --file rows.csv: expected NAME=PATH, e.g. --file table=rows.csv\n"
    code, _, err = run(capsys, path, "--file", f"table={tmp_path / 'none.csv'}")
    assert code == 2 and err.startswith("error: file 'table': cannot read ") and "No such file or directory" in err
    assert run(capsys, path) == (2, "", "error: give the request: --data '[[...]]' and/or --file NAME=PATH\n")
