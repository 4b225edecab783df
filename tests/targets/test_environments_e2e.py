"""Issue 13 end to end, through the gateway: each Bento is served by its own uv environment
(`conduit.environments`), side by side, in one CONDUIT_HOME.

  old-sk / new-sk   a model pickled by scikit-learn 1.6.1 (trained in a throwaway environment) and
                    one pickled by this venv's: both answer, each replica from its own environment
  words             a requirements_file package (humanize) used by the hooks, absent from conduit's
                    own venv; then a requirement PyPI does not have fails the apply, words serves on
  py312             python_version "3.12": the replica's interpreter is a 3.12 (skipped without one)

Real environments need PyPI (probed once, briefly; skipped where it does not answer) and are made
once per test session (CONDUIT_ENVS), from uv's cache where it has the packages. Replicas are kept warm (min_replicas 1)
so that their processes can be looked at after the request that proved they answer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from serving.trained import iris_folder, write_manifest
from targets.conftest import TEST_KEY, constant_project, replicas_of, wait_for
from test_environments import bento, pypi  # noqa: F401  (pypi: the module-scoped PyPI probe fixture)

pytest.importorskip("sklearn")
pytest.importorskip("bentoml")
psutil = pytest.importorskip("psutil")

OLD_SKLEARN = "1.6.1"
PYTHON_HERE = "{}.{}".format(*sys.version_info[:2])
WARM = {"min_replicas": 1, "max_replicas": 1, "cpu": 1}
SETOSA = [[5.1, 3.5, 1.4, 0.2]]
VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
MISSING_PACKAGE = "conduit-no-such-package-xyz"
# Run by the throwaway scikit-learn 1.6.1 environment: iris ships inside scikit-learn (no download).
TRAIN_OLD = """
import pickle, sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

features, labels = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500, random_state=0).fit(features, labels)
with open(sys.argv[1], "wb") as file:
    pickle.dump(model, file)
"""
WORD_HOOKS = """import humanize


def points(data):
    return [[float(value) for value in point] for point in data]


def in_words(labels):
    return [f"{humanize.intcomma(1234567)} x {label}" for label in labels]
"""


# --- deploying and asking ------------------------------------------------------------------------


def deploy(path: Path):
    from conduit.manifest.loader import load
    from conduit.targets import local

    return local.apply(load(path), progress=lambda _: None)


def answer(endpoint: str, points: list) -> list:
    """The deployment's result for `points`, asked with conduit's client; fails on anything but a 200."""
    from conduit.client import model_api_request

    response = model_api_request(endpoint, points, TEST_KEY, timeout=120)
    assert response["status_code"] == 200, response
    return response["data"]["result"]


# --- where a replica runs ------------------------------------------------------------------------


def replica_tree(name: str) -> list:
    """The processes of `name`'s ready replica (state.json): its leader and its workers."""
    rows = wait_for(lambda: [row for row in replicas_of(name) if row["state"] == "ready"])
    leader = psutil.Process(rows[0]["pid"])
    return [leader, *leader.children(recursive=True)]


def environment_of(name: str) -> Path:
    """The environment folder whose interpreter runs every process of `name`'s replica (a warm
    replica is a fork of its zygote, started by that interpreter: its command line says which)."""
    interpreters = {Path(process.cmdline()[0]) for process in replica_tree(name)}
    assert len(interpreters) == 1, interpreters
    [python] = interpreters
    assert python.parent.name == "bin" and python.parents[2] == Path(os.environ["CONDUIT_ENVS"]), python
    return python.parents[1]


def run_in(environment: Path, code: str) -> str:
    return run_by(environment / "bin" / "python", code)


def run_by(interpreter: Path | str, code: str) -> str:
    done = subprocess.run([str(interpreter), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def maps_sklearn_from(name: str, environment: Path) -> bool:
    """Whether a process of `name`'s replica has scikit-learn's compiled code loaded from `environment`."""
    paths = {region.path for process in replica_tree(name) for region in process.memory_maps()}
    return any(path.startswith(f"{environment}/") and "/sklearn/" in path for path in paths)


def bento_file(tag: str, relative: str) -> str:
    from conduit.targets.local.bentoml_serving import bento_folder

    return (bento_folder(tag) / relative).read_text(encoding="utf-8")


# --- projects ------------------------------------------------------------------------------------


def trained_by_old_sklearn(folder: Path, scratch: Path) -> Path:
    """iris pickled by scikit-learn 1.6.1, run in a throwaway environment made for it; conduit.yaml."""
    from conduit.environments import ensure

    trainer = ensure(bento(scratch, f"scikit-learn=={OLD_SKLEARN}"), None, progress=lambda _: None)
    folder.mkdir(parents=True)
    subprocess.run([str(trainer.python), "-c", TRAIN_OLD, str(folder / "model.pkl")], check=True, capture_output=True)
    stage = {"model_type": "sklearn_classifier", "path": "model.pkl"}
    write_manifest(folder, {"name": "old-sk", "flow": [stage], "python_version": PYTHON_HERE, **WARM})
    return folder / "conduit.yaml"


def words_project(folder: Path, *requirements: str) -> Path:
    """A constant model whose hooks use humanize, which only `requirements` installs; conduit.yaml."""
    path = constant_project(folder, "words", 7)
    (folder / "hooks.py").write_text(WORD_HOOKS, encoding="utf-8")
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    document = YAML().load(path)
    document["flow"][0].update(pre="hooks.py:points", post="hooks.py:in_words")
    document.update(requirements_file="requirements.txt", python_version=PYTHON_HERE, **WARM)
    YAML().dump(document, path)
    return path


# --- fixtures (module-scoped, in file order: each apply may make an environment) -----------------


@pytest.fixture(scope="module")
def old_sk(pypi, conduit_home, tmp_path_factory):  # noqa: F811
    return deploy(trained_by_old_sklearn(tmp_path_factory.mktemp("old") / "old-sk", tmp_path_factory.mktemp("trainer")))


@pytest.fixture(scope="module")
def new_sk(pypi, conduit_home, tmp_path_factory):  # noqa: F811
    manifest = iris_folder(tmp_path_factory.mktemp("new"), name="new-sk", python_version=PYTHON_HERE, **WARM)
    return deploy(manifest.base_dir / "conduit.yaml")


@pytest.fixture(scope="module")
def words_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("words") / "words"


@pytest.fixture(scope="module")
def words(pypi, conduit_home, words_folder):  # noqa: F811
    return deploy(words_project(words_folder, "humanize==4.9.0"))


# --- tests ---------------------------------------------------------------------------------------


def test_two_scikit_learn_versions_serve_side_by_side_each_from_its_environment(old_sk, new_sk):
    import sklearn

    assert answer(old_sk.endpoint, SETOSA)[0][0] > 0.9 and answer(new_sk.endpoint, SETOSA)[0][0] > 0.9
    old_env, new_env = environment_of("old-sk"), environment_of("new-sk")
    assert old_env != new_env
    assert run_in(old_env, "import sklearn; print(sklearn.__version__)") == OLD_SKLEARN
    assert run_in(new_env, "import sklearn; print(sklearn.__version__)") == sklearn.__version__
    assert maps_sklearn_from("old-sk", old_env) and maps_sklearn_from("new-sk", new_env)


def test_the_old_models_bento_pins_the_scikit_learn_that_pickled_it(old_sk):
    lock = json.loads(bento_file(old_sk.tag, "src/conduit.lock.json"))
    assert lock["packages"]["scikit-learn"] == OLD_SKLEARN
    assert lock["trained_with"] == {"artifacts/model.pkl": {"versions": {"scikit-learn": OLD_SKLEARN}}}
    assert f"scikit-learn=={OLD_SKLEARN}" in bento_file(old_sk.tag, "env/python/requirements.txt").splitlines()


def test_a_requirements_file_package_serves_the_hooks_but_is_not_in_conduits_venv(words):
    if importlib.util.find_spec("humanize") is not None:
        pytest.skip("humanize is installed in conduit's own venv: its absence there cannot be shown")
    assert answer(words.endpoint, [[1, 2], [3, 4]]) == ["1,234,567 x 7", "1,234,567 x 7"]
    assert run_in(environment_of("words"), "import humanize; print(humanize.__version__)") == "4.9.0"


def test_an_unresolvable_requirement_fails_the_apply_naming_it_and_the_old_revision_serves_on(words, words_folder):
    from conduit.errors import DeployError
    from conduit.store import Store

    with pytest.raises(DeployError, match=f"package '{MISSING_PACKAGE}' was not found in the package registry"):
        deploy(words_project(words_folder, "humanize==4.9.0", f"{MISSING_PACKAGE}==1.0"))
    assert Store().serving("words").revision == words.revision
    assert [revision.revision for revision in Store().revisions("words")] == [words.revision]
    assert answer(words.endpoint, [[1, 2]]) == ["1,234,567 x 7"]


def test_python_version_312_serves_from_a_312_interpreter(pypi, conduit_home, tmp_path):  # noqa: F811
    import sklearn

    from conduit.environments.interpreters import find_python
    from conduit.environments.uv import uv_binary
    from conduit.errors import DeployError

    try:
        find_python("3.12", uv_binary())
    except DeployError:
        pytest.skip("no Python 3.12 is installed here")
    skip_unless_wheel_for_312(f"scikit-learn=={sklearn.__version__}")
    iris_folder(tmp_path, name="py312", python_version="3.12", **WARM)
    deployment = deploy(tmp_path / "py312" / "conduit.yaml")
    assert answer(deployment.endpoint, SETOSA)[0][0] > 0.9
    assert run_in(environment_of("py312"), VERSION_PROBE) == "3.12"
    # What the processes really execute: /proc/<pid>/exe, the environment's symlinks resolved.
    assert {run_by(process.exe(), VERSION_PROBE) for process in replica_tree("py312")} == {"3.12"}


def skip_unless_wheel_for_312(requirement: str) -> None:
    """Skip when `requirement` has no wheel for Python 3.12 here (resolved by uv, nothing installed)."""
    from conduit.environments.uv import uv_binary

    done = subprocess.run(
        [uv_binary(), "pip", "compile", "-", "--quiet", "--python-version", "3.12", "--only-binary", ":all:"],
        input=requirement, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"{requirement} has no wheel for Python 3.12: {done.stderr.strip().splitlines()[-1:]}")
