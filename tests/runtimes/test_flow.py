"""Flows: hooks, files, parameters, stage-named errors and one result per data point."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")  # every flow here runs a real sklearn model
from sklearn.linear_model import LogisticRegression

from conduit.errors import InputError, ModelLoadError
from conduit.runtimes.flow import Flow, FlowError
from conduit.runtimes.hooks import HookError

from .helpers import IRIS_POINTS, load_flow, make_manifest, save_pickle

HOOKS = '''
from conduit.errors import InputError

NAMES = ("setosa", "versicolor", "virginica")


def from_objects(data):
    return [[point["sl"], point["sw"], point["pl"], point["pw"]] for point in data]


def to_labels(probabilities):
    return [NAMES[int(row.argmax())] for row in probabilities]


def with_files(data, files=None):
    rows = [list(map(float, files["csv"].decode().split(",")))] if files else []
    return list(data or []) + rows


def scaled_by_file(data, files):
    factor = float(files["factor"]) if "factor" in files else 1.0
    return [[value * factor for value in row] for row in data]


def with_parameters(output, parameters=None):
    digits = parameters.get("digits", 2)
    return [[round(value, digits) for value in row] for row in output.tolist()]


def strict(data):
    raise InputError("sl must be positive")


def buggy(data):
    return 1 / 0


def too_few(output):
    return output[:1]


def csv_rows(data, files):
    lines = files["table"].decode().splitlines()
    return [[float(value) for value in line.split(",")] for line in lines]


def nothing_left(data):
    return []
'''


@pytest.fixture()
def folder(tmp_path, iris):
    model = LogisticRegression(max_iter=300).fit(*iris)
    save_pickle(tmp_path / "model.pkl", model)
    (tmp_path / "hooks.py").write_text(HOOKS)
    return tmp_path, model


def stage(**hooks):
    return [{"model_type": "sklearn_classifier", "path": "model.pkl", **hooks}]


def test_pre_and_post_hooks_wrap_the_model(folder):
    tmp_path, model = folder
    flow = load_flow(tmp_path, stage(pre="hooks.py:from_objects", post="hooks.py:to_labels"))
    points = [dict(zip(("sl", "sw", "pl", "pw"), row)) for row in IRIS_POINTS]
    names = np.array(["setosa", "versicolor", "virginica"])
    assert flow.predict(points) == names[model.predict_proba(np.array(IRIS_POINTS)).argmax(axis=1)].tolist()


def test_files_only_request_skips_the_count(folder):
    tmp_path, model = folder
    flow = load_flow(tmp_path, stage(pre="hooks.py:with_files"))
    result = flow.predict(None, files={"csv": b"5.9,3.0,4.2,1.5"})
    np.testing.assert_allclose(result, model.predict_proba([[5.9, 3.0, 4.2, 1.5]]), rtol=1e-12)


def test_pre_hook_accepting_files_receives_them(folder):
    tmp_path, model = folder
    flow = load_flow(tmp_path, stage(pre="hooks.py:scaled_by_file"))
    result = flow.predict(IRIS_POINTS, files={"factor": b"0.5"})
    np.testing.assert_allclose(result, model.predict_proba(np.array(IRIS_POINTS) * 0.5), rtol=1e-12)
    # without files the hook gets {}: the one-argument contract never sees None
    np.testing.assert_allclose(flow.predict(IRIS_POINTS), model.predict_proba(np.array(IRIS_POINTS)), rtol=1e-12)


def test_post_hook_accepting_parameters_receives_them(folder):
    tmp_path, model = folder
    flow = load_flow(tmp_path, stage(post="hooks.py:with_parameters"))
    result = flow.predict(IRIS_POINTS[:1], parameters={"digits": 1})
    assert result == [[round(v, 1) for v in model.predict_proba([IRIS_POINTS[0]])[0]]]


@pytest.mark.parametrize(
    "hooks, data, files, message",
    [
        ({"pre": "hooks.py:strict"}, IRIS_POINTS, None, r"^flow\[0\] \(sklearn_classifier\): sl must be positive$"),
        (
            {"pre": "hooks.py:nothing_left"},
            IRIS_POINTS,
            None,
            r"^flow\[0\] \(sklearn_classifier\): the pre hook hooks.py:nothing_left returned no data points$",
        ),
        ({}, [], None, r"^no data points: send a JSON array of data points"),
        ({}, None, {"table": b"1,2,3,4"}, r"^this flow takes no files \(sent: table\): only a pre or post hook with a `files`"),
        # Data and a file the flow has no hook for: refused, never dropped with a 200.
        ({"pre": "hooks.py:strict"}, IRIS_POINTS, {"table": b"1,2"}, r"^this flow takes no files \(sent: table\)"),
    ],
)
def test_input_a_hook_or_the_flow_rejects_is_a_422(folder, hooks, data, files, message):
    tmp_path, _ = folder
    with pytest.raises(InputError, match=message):
        load_flow(tmp_path, stage(**hooks)).predict(data, files=files)


def test_a_crashing_hook_is_named(folder):
    tmp_path, _ = folder
    with pytest.raises(HookError) as raised:
        load_flow(tmp_path, stage(pre="hooks.py:buggy")).predict(IRIS_POINTS)
    assert str(raised.value) == "flow[0] (sklearn_classifier): hook hooks.py:buggy raised ZeroDivisionError: division by zero"
    assert raised.value.http_status == 500


def test_post_hook_breaking_the_count_is_a_flow_error(folder):
    tmp_path, _ = folder
    with pytest.raises(FlowError, match="the flow returned 1 results for 3 data points"):
        load_flow(tmp_path, stage(post="hooks.py:too_few")).predict(IRIS_POINTS)


def test_missing_hook_file_and_function(folder):
    tmp_path, _ = folder
    with pytest.raises(ModelLoadError, match=r"flow\[0\] \(sklearn_classifier\): hook nope.py:f: file not found: "):
        load_flow(tmp_path, stage(pre="nope.py:f"))
    with pytest.raises(ModelLoadError, match=r"hook hooks.py:nothing: hooks.py defines no function 'nothing'"):
        load_flow(tmp_path, stage(post="hooks.py:nothing"))


def test_hook_file_that_fails_to_import(folder):
    tmp_path, _ = folder
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(ModelLoadError, match="hook broken.py:f: importing broken.py failed: ModuleNotFoundError"):
        load_flow(tmp_path, stage(pre="broken.py:f"))




def test_the_pre_hook_decides_the_number_of_data_points(folder):
    tmp_path, model = folder
    table = "\n".join(",".join(map(str, row)) for row in IRIS_POINTS).encode()
    flow = load_flow(tmp_path, stage(pre="hooks.py:csv_rows"))
    result = flow.predict(None, files={"table": table})  # one CSV upload, three data points
    np.testing.assert_allclose(result, model.predict_proba(np.array(IRIS_POINTS)), rtol=1e-12)
    assert len(flow.predict([["ignored"]], files={"table": table})) == 3


def test_given_hook_functions_are_called_instead_of_importing_the_file(folder):
    tmp_path, model = folder
    (tmp_path / "script.py").write_text("raise SystemExit('importing script.py must not happen')\n")
    calls = []

    def doubled(data):
        calls.append(data)
        return [[value * 2 for value in row] for row in data]

    manifest = make_manifest(tmp_path, stage(pre="script.py:doubled"))
    result = Flow.load(manifest, functions={(0, "pre"): doubled}).predict(IRIS_POINTS)
    np.testing.assert_allclose(result, model.predict_proba(np.array(IRIS_POINTS) * 2), rtol=1e-12)
    assert calls == [IRIS_POINTS]
