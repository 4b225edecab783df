"""Issue 13: one Python environment per set of requirements (uv), the artifact's own library
versions pinned, and the VRAM fit check. The environment tests make real uv environments with
small packages; they skip cleanly where PyPI does not answer (probed once, briefly)."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
from pathlib import Path

import pytest

from conduit.environments import RECORD, ensure, plan_for
from conduit.environments.interpreters import find_python, own_version
from conduit.environments.requirements import content_key, requirement_lines
from conduit.environments.uv import uv_binary
from conduit.errors import DeployError
from serving.trained import iris_folder, write_manifest

PYPI = ("pypi.org", 443)
GB = 10**9


@pytest.fixture(scope="module")
def pypi() -> None:
    try:
        socket.create_connection(PYPI, timeout=3).close()
    except OSError:
        pytest.skip("PyPI does not answer here: real environments cannot be made")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One CONDUIT_HOME for the module, so environments made once serve several tests."""
    return tmp_path_factory.mktemp("conduit-home")


@pytest.fixture(autouse=True)
def _conduit_home(home, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(home))
    monkeypatch.delenv("CONDUIT_ENVS", raising=False)  # this module looks into $CONDUIT_HOME/envs itself


def bento(folder: Path, *lines: str) -> Path:
    """A stand-in for a built Bento: only its requirements file matters to an environment."""
    (folder / "env" / "python").mkdir(parents=True, exist_ok=True)
    (folder / "env" / "python" / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def run_in(environment, code: str) -> str:
    done = subprocess.run([str(environment.python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def made_folders(home: Path) -> set[str]:
    return {path.name for path in (home / "envs").iterdir() if path.is_dir()} if (home / "envs").is_dir() else set()


# --- the content key -----------------------------------------------------------------------------


def test_the_key_ignores_comments_order_repeats_and_name_spelling(tmp_path):
    first = bento(tmp_path / "a", "# pins", "numpy==2.4.6", "Scikit_Learn == 1.9.1  # the model's", "numpy==2.4.6")
    second = bento(tmp_path / "b", "scikit-learn==1.9.1", "", "numpy==2.4.6")
    assert requirement_lines(first) == requirement_lines(second) == ["numpy==2.4.6", "scikit-learn==1.9.1"]
    assert plan_for(first, "3.11").key == plan_for(second, "3.11").key
    assert plan_for(first, "3.11").key != plan_for(first, "3.12").key
    assert content_key("3.11", ["numpy==2.4.6"]) != content_key("3.11", ["numpy==2.4.5"])


def test_conduit_envs_moves_the_environments_out_of_the_home(tmp_path, monkeypatch):
    from conduit.environments import envs_home

    assert envs_home() == Path(os.environ["CONDUIT_HOME"]) / "envs"
    monkeypatch.setenv("CONDUIT_ENVS", str(tmp_path / "shared"))
    assert envs_home() == tmp_path / "shared"


def test_the_bento_pins_bentoml_at_the_version_conduit_runs(tmp_path):
    import bentoml

    assert f"bentoml=={bentoml.__version__}" in plan_for(bento(tmp_path, "humanize==4.9.0"), "3.11").lines


# --- real environments ---------------------------------------------------------------------------


def test_a_package_from_a_requirements_file_is_importable_there_and_only_there(pypi, home, tmp_path):
    environment = ensure(bento(tmp_path, "humanize==4.9.0"), None, progress=lambda _: None)
    assert environment.created and environment.path.parent == home / "envs"
    assert run_in(environment, "import humanize, importlib.metadata as m; print(m.version('humanize'))") == "4.9.0"
    assert run_in(environment, "import sys; print('%d.%d' % sys.version_info[:2])") == own_version()
    with pytest.raises(subprocess.CalledProcessError):  # conduit's own environment is never modified
        subprocess.run([os.sys.executable, "-c", "import humanize"], check=True, capture_output=True)


def test_the_same_requirements_in_another_order_share_one_environment(pypi, tmp_path):
    first = ensure(bento(tmp_path / "a", "humanize==4.9.0", "tabulate==0.9.0"), None, progress=lambda _: None)
    second = ensure(bento(tmp_path / "b", "tabulate==0.9.0", "# again", "humanize==4.9.0"), None, progress=print)
    assert second.path == first.path and second.key == first.key and not second.created


def test_two_scikit_learn_versions_serve_side_by_side(pypi, tmp_path):
    pytest.importorskip("sklearn")
    older = ensure(bento(tmp_path / "old", "scikit-learn==1.6.1"), None, progress=lambda _: None)
    newer = ensure(bento(tmp_path / "new", "scikit-learn==1.7.2"), None, progress=lambda _: None)
    assert older.path != newer.path
    assert run_in(older, "import sklearn; print(sklearn.__version__)") == "1.6.1"
    assert run_in(newer, "import sklearn; print(sklearn.__version__)") == "1.7.2"


def test_a_rendered_scikit_learn_bento_predicts_in_its_environment(pypi, tmp_path):
    from conduit.render import render

    rendered = render(iris_folder(tmp_path / "src"), tmp_path / "out").path
    environment = ensure(rendered, None, progress=lambda _: None)
    code = (
        "from conduit.runtimes.flow import Flow; from conduit.serving.bento import load_manifest; "
        "print(Flow.load(load_manifest('.')).predict([[5.1, 3.5, 1.4, 0.2]]))"
    )
    done = subprocess.run([str(environment.python), "-c", code], cwd=rendered, capture_output=True, text=True, check=True)
    assert done.stdout.startswith("[[0.9")  # setosa, with the scikit-learn the pickle was written by


def test_an_unresolvable_requirement_fails_naming_it_and_leaves_nothing(pypi, home, tmp_path):
    before = made_folders(home)
    with pytest.raises(DeployError, match="package 'conduit-no-such-package-xyz' was not found in the package registry"):
        ensure(bento(tmp_path / "a", "conduit-no-such-package-xyz==1.0"), None, progress=lambda _: None)
    with pytest.raises(DeployError, match=r"there is no version of humanize==99\.0\.0"):
        ensure(bento(tmp_path / "b", "humanize==99.0.0"), None, progress=lambda _: None)
    assert made_folders(home) == before  # no half-made environment, not even its staging folder


def test_python_version_picks_that_interpreter(pypi, tmp_path):
    try:
        find_python("3.12", uv_binary())
    except DeployError:
        pytest.skip("no Python 3.12 is installed here")
    environment = ensure(bento(tmp_path, "humanize==4.9.0"), "3.12", progress=lambda _: None)
    assert run_in(environment, "import sys, humanize; print('%d.%d' % sys.version_info[:2])") == "3.12"


def test_a_pin_too_new_for_python_version_says_which_python_it_needs(pypi, home, tmp_path):
    """numpy 2.4 needs Python 3.11: a Bento pinning it (as one rendered here does) cannot serve on 3.9,
    and the message says so rather than asking to change a requirement the user never wrote."""
    try:
        find_python("3.9", uv_binary())
    except DeployError:
        pytest.skip("no Python 3.9 is installed here")
    with pytest.raises(DeployError) as caught:
        ensure(bento(tmp_path, "numpy==2.4.6"), "3.9", progress=lambda _: None)
    assert str(caught.value) == (
        "the environment could not be made: numpy==2.4.6 (the version the model was saved with, or the one installed "
        "where the Bento was rendered) needs Python>=3.11, and python_version is 3.9 (hint: set python_version to 3.11 "
        "or later, or save the model again under Python 3.9)"
    )


def test_a_missing_interpreter_says_how_to_get_one(home, tmp_path, monkeypatch):
    missing = "3.9" if own_version() != "3.9" else "3.10"
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    before = made_folders(home)
    with pytest.raises(DeployError) as caught:
        ensure(bento(tmp_path, "humanize==4.9.0"), missing, progress=lambda _: None)
    assert str(caught.value).startswith(f"Python {missing} is not installed here")
    assert f"uv python install {missing}" in str(caught.value) and "\n" not in str(caught.value)
    assert made_folders(home) == before


def test_force_remakes_the_environment(pypi, tmp_path):
    requirements = bento(tmp_path, "humanize==4.9.0")
    first = ensure(requirements, None, progress=lambda _: None)
    made_at = json.loads((first.path / RECORD).read_text())["made_at"]
    again = ensure(requirements, None, force=True, progress=lambda _: None)
    assert again.created and again.path == first.path
    assert json.loads((again.path / RECORD).read_text())["made_at"] > made_at
    assert run_in(again, "import humanize; print('ok')") == "ok"


def test_a_half_made_environment_is_made_again_not_used(pypi, home, tmp_path):
    requirements = bento(tmp_path, "humanize==4.9.0", "tabulate==0.9.0", "six==1.16.0")
    folder = home / "envs" / plan_for(requirements, own_version()).key
    folder.mkdir(parents=True)
    (folder / "bin").mkdir()  # what an interrupted make could leave: no record
    environment = ensure(requirements, None, progress=lambda _: None)
    assert environment.created and (folder / RECORD).is_file()
    assert run_in(environment, "import six; print(six.__version__)") == "1.16.0"


def test_two_applies_making_one_environment_at_once_make_it_once(pypi, home, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    folders = [bento(tmp_path / name, "humanize==4.9.0", "six==1.17.0") for name in ("a", "b")]
    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda folder: ensure(folder, None, progress=lambda _: None), folders))
    assert made[0].path == made[1].path and sorted(e.created for e in made) == [False, True]
    assert not [path for path in (home / "envs").iterdir() if path.name.startswith(f".{made[0].key}.") and path.is_dir()]


# --- the artifact's own library versions ----------------------------------------------------------


def test_xgboost_json_and_ubj_record_the_xgboost_that_wrote_them(tmp_path):
    xgboost = pytest.importorskip("xgboost")
    import numpy as np

    from conduit.artifacts import inspect_artifact

    model = xgboost.XGBRegressor(n_estimators=2).fit(np.random.rand(20, 3), np.random.rand(20))
    for suffix in (".json", ".ubj"):
        model.save_model(tmp_path / f"model{suffix}")
        assert inspect_artifact(tmp_path / f"model{suffix}").versions == {"xgboost": xgboost.__version__}


def test_a_spacy_folder_records_its_spacy_range(tmp_path):
    spacy = pytest.importorskip("spacy")
    from conduit.artifacts import inspect_artifact

    spacy.blank("en").to_disk(tmp_path / "nlp")
    recorded = json.loads((tmp_path / "nlp" / "meta.json").read_text())["spacy_version"]
    assert inspect_artifact(tmp_path / "nlp").versions == {"spacy": recorded}


def test_a_hugging_face_folder_records_its_transformers_version(tmp_path):
    transformers = pytest.importorskip("transformers")
    from conduit.artifacts import inspect_artifact

    transformers.BertConfig(num_hidden_layers=1, architectures=["BertForSequenceClassification"]).save_pretrained(tmp_path)
    assert inspect_artifact(tmp_path).versions == {"transformers": transformers.__version__}


def test_onnx_records_its_producer_and_opset(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from conduit.artifacts import inspect_artifact

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])  # fmt: skip
    model = helper.make_model(graph, producer_name="skl2onnx", producer_version="1.17.0",
                              opset_imports=[helper.make_opsetid("ai.onnx.ml", 3), helper.make_opsetid("", 17)])  # fmt: skip
    onnx.save(model, tmp_path / "model.onnx")
    artifact = inspect_artifact(tmp_path / "model.onnx")
    assert (artifact.producer, artifact.opset) == ("skl2onnx 1.17.0", 17)


def test_torchscript_records_its_archive_format(tmp_path):
    torch = pytest.importorskip("torch")
    from conduit.artifacts import inspect_artifact

    torch.jit.script(torch.nn.Linear(2, 1)).save(str(tmp_path / "model.pt"))
    assert inspect_artifact(tmp_path / "model.pt").producer.startswith("TorchScript archive format ")


def pickled_by(model, version: str) -> bytes:
    """`model` pickled as if scikit-learn `version` had written it (its `_sklearn_version`)."""
    import sklearn

    data = pickle.dumps(model)
    here = sklearn.__version__.encode()
    assert len(here) == len(version) and data.count(here) >= 1
    return data.replace(here, version.encode())


def test_render_pins_the_version_the_artifact_was_written_by(tmp_path):
    import sklearn

    from conduit.render import render

    manifest = iris_folder(tmp_path / "src")
    older = "1.6.1" if sklearn.__version__ != "1.6.1" else "1.6.0"
    model = manifest.resolve("model.pkl")
    model.write_bytes(pickled_by(pickle.loads(model.read_bytes()), older))
    rendered = render(manifest, tmp_path / "out").path
    lock = json.loads((rendered / "conduit.lock.json").read_text())
    assert lock["packages"]["scikit-learn"] == older
    assert lock["trained_with"] == {"artifacts/model.pkl": {"versions": {"scikit-learn": older}}}
    assert f"scikit-learn=={older}" in (rendered / "requirements.txt").read_text().splitlines()


def test_a_user_pin_wins_over_the_version_installed_here_but_not_over_the_artifact(tmp_path):
    from conduit.render import render

    manifest = iris_folder(tmp_path / "src", requirements_file="requirements.txt")
    (manifest.base_dir / "requirements.txt").write_text("numpy>=1.26\nscikit-learn>=1.3\n")
    lines = (render(manifest, tmp_path / "out").path / "requirements.txt").read_text().splitlines()
    assert not any(line.startswith("numpy==") for line in lines) and "numpy>=1.26" in lines
    assert any(line.startswith("scikit-learn==") for line in lines) and "scikit-learn>=1.3" in lines


def test_a_user_pin_contradicting_the_artifact_is_a_validate_error_naming_both(tmp_path):
    import sklearn

    from conduit.manifest import ManifestInvalid, load

    manifest = iris_folder(tmp_path / "src", requirements_file="requirements.txt")
    (manifest.base_dir / "requirements.txt").write_text("humanize==4.9.0\nscikit-learn==1.5.0\n")
    with pytest.raises(ManifestInvalid) as caught:
        load(manifest.base_dir / "conduit.yaml")
    [problem] = [p for p in caught.value.problems if p.path == ("requirements_file",)]
    assert problem.message == (
        f"requirements_file pins scikit-learn==1.5.0, but 'model.pkl' (flow[0].path) was written by scikit-learn {sklearn.__version__}"
    )
    assert problem.line is not None


# --- does the model fit the GPU? ------------------------------------------------------------------


def weights_folder(folder: Path, gigabytes: float, stored_dtype: str = "float32") -> Path:
    """A Hugging Face folder whose safetensors weigh `gigabytes` (sparse files: nothing is written)."""
    folder.mkdir(parents=True)
    config = {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "torch_dtype": stored_dtype}
    (folder / "config.json").write_text(json.dumps(config))
    for index in range(2):
        with open(folder / f"model-0000{index + 1}-of-00002.safetensors", "wb") as file:
            file.truncate(int(gigabytes * GB / 2))
    return folder


def fit_problems(tmp_path: Path, gigabytes: float, hardware: str, options: dict | None = None):
    from conduit.manifest import ManifestInvalid
    from conduit.manifest.loader import load_with_warnings

    weights_folder(tmp_path / "hf", gigabytes)
    stage = {"model_type": "huggingface_pipeline", "task": "text-classification", "model": "hf", "options": options or {}}
    write_manifest(tmp_path, {"name": "big", "flow": [stage], "hardware": hardware})
    try:
        return [], [p for p in load_with_warnings(tmp_path / "conduit.yaml")[1] if "VRAM" in p.message]
    except ManifestInvalid as invalid:
        return [p for p in invalid.problems if "VRAM" in p.message], []


def test_weights_bigger_than_the_vram_are_refused_with_the_smallest_row_that_fits(tmp_path):
    errors, _ = fit_problems(tmp_path, 30, "AMPERE_A5000")
    assert [(p.message, p.hint, p.path) for p in errors] == [(
        "the model's weights take 30.0 GB, more than the 24 GB of VRAM AMPERE_A5000 has",
        "hardware: A100 (40 GB) is the smallest that fits",
        ("hardware",),
    )]  # fmt: skip


def test_weights_above_80_percent_of_the_vram_are_a_warning(tmp_path):
    errors, warnings = fit_problems(tmp_path, 20, "AMPERE_A5000")
    assert errors == [] and [p.message for p in warnings] == [
        "the model's weights take 20.0 GB, 83% of the 24 GB of VRAM AMPERE_A5000 has: activations need the rest"
    ]


def test_the_served_dtype_decides_the_weights_size(tmp_path):
    assert fit_problems(tmp_path, 30, "AMPERE_A5000", {"torch_dtype": "float16"}) == ([], [])


def test_an_environment_is_private_to_its_owner_as_all_of_conduit_home_is(pypi, tmp_path, monkeypatch):
    from private_state import open_to_others

    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "private-home"))
    (tmp_path / "private-home").mkdir(mode=0o700)
    previous = os.umask(0o022)  # the usual umask, and files hardlinked from uv's cache
    try:
        ensure(bento(tmp_path / "b", "humanize==4.9.0"), None, progress=lambda _: None)
    finally:
        os.umask(previous)
    assert open_to_others(tmp_path / "private-home") == []
