"""torch: cloudpickle .pkl and TorchScript .pt, devices, and a torch embedding feeding xgboost."""
from __future__ import annotations

import warnings

import cloudpickle
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conduit.errors import InputError, ModelLoadError
from conduit.runtimes.flow import Flow, GpuUnavailableWarning

from .helpers import IRIS_POINTS, load_flow, make_manifest


def direct(model, points):
    with torch.no_grad():
        return model(torch.tensor(points, dtype=torch.float32)).numpy()


@pytest.fixture()
def mlp_pkl(tmp_path, iris_mlp):
    with open(tmp_path / "model.pkl", "wb") as handle:
        cloudpickle.dump(iris_mlp, handle)
    return tmp_path / "model.pkl"


def test_cloudpickled_module_matches_calling_it(tmp_path, iris_mlp, mlp_pkl):
    result = load_flow(tmp_path, [("torch", "model.pkl")]).predict(IRIS_POINTS)
    np.testing.assert_allclose(result, direct(iris_mlp, IRIS_POINTS), rtol=1e-6)


def test_torchscript_file_matches_calling_it(tmp_path, iris_mlp):
    torch.jit.script(iris_mlp).save(str(tmp_path / "model.pt"))
    result = load_flow(tmp_path, [("torch", "model.pt")]).predict(IRIS_POINTS[0])
    np.testing.assert_allclose(result, direct(iris_mlp, IRIS_POINTS[:1]), rtol=1e-6)


def test_class_defined_in_a_script_is_pickled_by_value(tmp_path):
    namespace: dict = {}
    exec(
        "import torch\n"
        "class Scale(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return x * 3\n",
        namespace,
    )
    module = namespace["Scale"]()
    with open(tmp_path / "model.pkl", "wb") as handle:
        cloudpickle.dump(module, handle)
    assert load_flow(tmp_path, [("torch", "model.pkl")]).predict([[1, 2]]) == [[3.0, 6.0]]


def test_pt_that_is_not_torchscript_is_refused(tmp_path, iris_mlp):
    torch.save(iris_mlp.state_dict(), tmp_path / "model.pt")
    with pytest.raises(ModelLoadError) as raised:
        load_flow(tmp_path, [("torch", "model.pt")])
    message = str(raised.value)
    assert message.startswith("flow[0] (torch): model.pt is not a TorchScript file (")
    assert message.endswith(
        "): save the model with torch.jit.script(model).save(path), or pickle the whole module with cloudpickle as a .pkl"
    )


def test_pickled_state_dict_is_refused(tmp_path, iris_mlp):
    with open(tmp_path / "model.pkl", "wb") as handle:
        cloudpickle.dump(iris_mlp.state_dict(), handle)
    with pytest.raises(ModelLoadError, match=r"model\.pkl holds a OrderedDict, not a callable model \(a state_dict"):
        load_flow(tmp_path, [("torch", "model.pkl")])


def test_wrong_width_is_a_422_naming_the_shapes(tmp_path, mlp_pkl):
    flow = load_flow(tmp_path, [("torch", "model.pkl")])
    with pytest.raises(InputError) as raised:
        flow.predict([[1.0, 2.0, 3.0]])
    assert str(raised.value).startswith("flow[0] (torch): the model rejected input shape [1, 3] of numbers: ")
    assert "(1x3 and 4x8)" in str(raised.value)


def test_gpu_hardware_without_cuda_runs_on_cpu_with_one_warning(tmp_path, iris_mlp, mlp_pkl):
    torch.jit.script(iris_mlp).save(str(tmp_path / "model.pt"))
    manifest = make_manifest(tmp_path, [("torch", "model.pkl"), ("torch", "model.pt")], hardware=None)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: covered by the gpu tests")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flow = Flow.load(manifest)
    gpu_warnings = [w for w in caught if issubclass(w.category, GpuUnavailableWarning)]
    assert [str(w.message) for w in gpu_warnings] == [
        "hardware AMPERE_A5000 is a GPU but CUDA is not available here: flow[0] (torch), flow[1] (torch) run on the CPU"
    ]
    assert all(stage.runtime.device == "cpu" for stage in flow.stages)


def test_cpu_hardware_does_not_warn(tmp_path, mlp_pkl):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GpuUnavailableWarning)
        load_flow(tmp_path, [("torch", "model.pkl")], hardware="CPU")


def test_torch_embedding_feeds_xgboost(tmp_path, iris):
    from xgboost import XGBClassifier

    torch.manual_seed(1)
    embed = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh()).eval()
    with torch.no_grad():
        embedded = embed(torch.tensor(iris[0], dtype=torch.float32)).numpy()
    classifier = XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(embedded, iris[1])
    with open(tmp_path / "embed.pkl", "wb") as handle:
        cloudpickle.dump(embed, handle)
    classifier.save_model(tmp_path / "model.json")
    flow = load_flow(tmp_path, [("torch", "embed.pkl"), ("xgboost_classifier", "model.json")])
    expected = classifier.predict_proba(direct(embed, IRIS_POINTS))
    np.testing.assert_allclose(flow.predict(IRIS_POINTS), expected, rtol=1e-6)


def test_second_stage_errors_name_it(tmp_path, iris):
    from xgboost import XGBClassifier

    embed = torch.nn.Linear(4, 2).eval()
    XGBClassifier(n_estimators=2, n_jobs=1).fit(iris[0], iris[1]).save_model(tmp_path / "model.json")
    with open(tmp_path / "embed.pkl", "wb") as handle:
        cloudpickle.dump(embed, handle)
    flow = load_flow(tmp_path, [("torch", "embed.pkl"), ("xgboost_classifier", "model.json")])
    with pytest.raises(InputError) as raised:
        flow.predict(IRIS_POINTS)
    assert str(raised.value) == (
        "flow[1] (xgboost_classifier): expected shape [N, 4] (N data points of 4 features), received [3, 2]"
    )


@pytest.mark.gpu
def test_gpu_hardware_puts_the_module_on_cuda(tmp_path, iris_mlp, mlp_pkl):
    flow = Flow.load(make_manifest(tmp_path, [("torch", "model.pkl")], hardware="AMPERE_A5000"))
    runtime = flow.stages[0].runtime
    assert runtime.device == "cuda"
    assert next(runtime.model.parameters()).is_cuda
    np.testing.assert_allclose(flow.predict(IRIS_POINTS), direct(iris_mlp, IRIS_POINTS), rtol=1e-4, atol=1e-5)
