"""Render: pure and deterministic, the layout of a build context, and drift of the committed glue."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conduit.errors import ModelLoadError
from conduit.hardware import CUDA_VERSION
from conduit.render import GLUE_FILES, RenderError, render, service_settings
from serving.trained import EXAMPLES, iris_folder, torch_folder, trained_example

ROOT = Path(__file__).resolve().parents[1]
VOLATILE_LOCK_KEYS = ("artifacts", "packages", "trained_with")  # values depend on the machine that trained/rendered


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def iris(tmp_path):
    return iris_folder(tmp_path / "src")


def test_render_is_deterministic(iris, tmp_path):
    first, second = render(iris, tmp_path / "a"), render(iris, tmp_path / "b")
    assert first.version == second.version and len(first.version) == 16
    assert files_of(first.path) == files_of(second.path)
    assert render(iris, tmp_path / "a").version == first.version  # rendering again in place


def test_build_context_layout(iris, tmp_path):
    result = render(iris, tmp_path / "out")
    assert result.path == (tmp_path / "out" / "iris-e2e").resolve()
    names = set(files_of(result.path))
    assert {"service.py", "bentofile.yaml", "conduit.lock.json", "requirements.txt"} <= names
    assert {"artifacts/model.pkl", "hooks/hooks.py", "conduit/serving/handler.py", "conduit/runtimes/flow.py"} <= names
    assert not any(name.startswith(("conduit/cli/", "conduit/targets/")) for name in names)
    lock = json.loads((result.path / "conduit.lock.json").read_text())
    stage = lock["manifest"]["flow"][0]
    assert stage["path"] == "artifacts/model.pkl" and stage["pre"] == "hooks/hooks.py:rows"
    assert lock["artifacts"]["artifacts/model.pkl"].startswith("sha256:")
    assert lock["packages"]["scikit-learn"]
    requirements = (result.path / "requirements.txt").read_text()
    assert f"scikit-learn=={lock['packages']['scikit-learn']}" in requirements


def test_the_version_follows_the_artifact(iris, tmp_path):
    before = render(iris, tmp_path / "out").version
    model = iris.resolve("model.pkl")
    model.write_bytes(model.read_bytes() + b"\n")
    assert render(iris, tmp_path / "out").version != before


def test_the_lock_manifest_loads_back_inside_the_bento(iris, tmp_path):
    from conduit.runtimes.flow import Flow
    from conduit.serving.bento import load_manifest

    result = render(iris, tmp_path / "out")
    point = [[5.1, 3.5, 1.4, 0.2]]
    assert Flow.load(load_manifest(result.path)).predict(point) == Flow.load(iris).predict(point)


def test_user_requirements_are_merged(tmp_path):
    manifest = iris_folder(tmp_path / "src", requirements_file="requirements.txt")
    (tmp_path / "src" / "iris-e2e" / "requirements.txt").write_text("tabulate==0.9.0\n")
    result = render(manifest, tmp_path / "out")
    assert "tabulate==0.9.0" in (result.path / "requirements.txt").read_text()


def test_cpu_and_gpu_settings_come_from_the_hardware_table(iris, tmp_path):
    cpu = service_settings(iris)
    assert cpu["workers"] == 1 and cpu["resources"] == {"cpu": "1", "memory": "8Gi"} and cpu["cuda_version"] is None
    gpu = service_settings(torch_folder(tmp_path))
    assert gpu["workers"] == 1 and gpu["resources"]["gpu"] == 1 and gpu["resources"]["gpu_type"] == "nvidia-rtx-a5000"
    assert gpu["cuda_version"] == CUDA_VERSION and gpu["traffic"]["timeout"] > cpu["traffic"]["timeout"]
    assert service_settings(iris.model_copy(update={"cpu": 4}))["workers"] == 4


def test_bentofiles_are_valid_for_bentoml(iris, tmp_path):
    from bentoml._internal.bento.build_config import BentoBuildConfig

    for manifest in (iris, torch_folder(tmp_path)):
        with (render(manifest, tmp_path / "out").path / "bentofile.yaml").open() as handle:
            config = BentoBuildConfig.from_yaml(handle)
        # No python_version in the manifest: the image gets the Python conduit runs under.
        assert config.python.lock_packages is False and config.docker.python_version == "{}.{}".format(*sys.version_info[:2])


def test_missing_artifact_is_a_clear_error_and_loses_nothing(iris, tmp_path):
    earlier = render(iris, tmp_path / "out")
    iris.resolve("model.pkl").unlink()
    with pytest.raises(ModelLoadError, match="does not exist"):
        render(iris, tmp_path / "out")
    assert (earlier.path / "artifacts" / "model.pkl").exists()


def test_never_replaces_a_folder_it_did_not_render(iris, tmp_path):
    (tmp_path / "out" / "iris-e2e").mkdir(parents=True)
    (tmp_path / "out" / "iris-e2e" / "notes.txt").write_text("mine")
    with pytest.raises(RenderError, match="not an earlier conduit render"):
        render(iris, tmp_path / "out")
    with pytest.raises(RenderError, match="holds the manifest"):
        render(iris, iris.base_dir.parent)


def normalised_lock(text: str) -> dict:
    lock = json.loads(text)
    for key in VOLATILE_LOCK_KEYS:
        lock[key] = sorted(lock[key])
    return lock


def example_names() -> list[str]:
    return sorted(path.parent.name for path in EXAMPLES.glob("*/conduit.yaml"))


@pytest.mark.parametrize("name", example_names())
def test_committed_glue_matches_a_fresh_render(name, tmp_path):
    """bentos/<name>/ is what `conduit render examples/<name>/conduit.yaml` writes. Artifact hashes
    and package versions differ between machines, so the lock is compared on everything else."""
    from conduit.manifest import load

    if not (EXAMPLES / name / "train.py").exists():
        pytest.skip(f"examples/{name} has no train.py to make its artifacts")
    folder = trained_example(name, tmp_path)
    fresh = render(load(folder / "conduit.yaml"), tmp_path / "out").path
    committed = ROOT / "bentos" / name
    hint = f"run: conduit render examples/{name}/conduit.yaml (after its train.py)"
    for glue in GLUE_FILES:
        assert (committed / glue).exists(), f"bentos/{name}/{glue} is missing: {hint}"
        old, new = (committed / glue).read_text(), (fresh / glue).read_text()
        if glue.endswith(".json"):
            old, new = normalised_lock(old), normalised_lock(new)
        assert old == new, f"bentos/{name}/{glue} drifted: {hint}"


def test_another_python_keeps_only_the_artifacts_pins(iris, tmp_path):
    """numpy 2.4 needs Python 3.11: served on another Python than the one rendering, only what the
    artifact decided (the scikit-learn that pickled it) stays pinned, and the rest is resolved there."""
    import sklearn

    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.11"
    lines = (render(iris.model_copy(update={"python_version": other}), tmp_path / "o").path / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sklearn.__version__}" in lines
    assert "numpy" in lines and not any(line.startswith("numpy==") for line in lines)
    same = (render(iris, tmp_path / "s").path / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("numpy==") for line in same)
