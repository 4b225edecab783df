"""The wheel carries the templates, an installed conduit finds them, and the light entry points
(`import conduit`, the manifest, the CLI) import no model framework and no BentoML."""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("bentoml", "torch", "sklearn", "xgboost", "onnxruntime", "spacy", "transformers")


def template_files() -> set[str]:
    templates = REPO / "templates"
    return {
        path.relative_to(templates).as_posix()
        for path in templates.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=True, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the source tree (so the shared checkout gets no build/ output)."""
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, source / name)
    for name in ("toolchain", "templates"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)])
    return next(dist.glob("conduit_deploy-*.whl"))


def test_the_wheel_carries_every_template(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert len(template_files()) >= 2
    assert {f"conduit/templates/{name}" for name in template_files()} <= names
    assert {"conduit/__init__.py", "conduit/manifest/loader.py", "conduit/cli/main.py"} <= names


def test_the_wheel_carries_the_dashboards_pages_and_chart_library(wheel: Path):
    dashboard = REPO / "toolchain" / "conduit" / "dashboard"
    files = [*dashboard.glob("static/*"), *dashboard.glob("templates/*")]
    shipped = {f"conduit/dashboard/{path.relative_to(dashboard).as_posix()}" for path in files}
    assert {"conduit/dashboard/static/chart.min.js", "conduit/dashboard/static/chart.js.LICENSE.txt"} <= shipped
    assert shipped <= set(zipfile.ZipFile(wheel).namelist())


def test_installed_conduit_finds_its_templates(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)])
    probe = "import conduit.paths as p; d = p.templates_dir(); print(d); print(*sorted(x.relative_to(d).as_posix() for x in d.rglob('*') if x.is_file() and '__pycache__' not in x.parts), sep='\\n')"
    found = run([str(python), "-c", probe], cwd=tmp_path).stdout.splitlines()
    assert Path(found[0]).resolve().is_relative_to(venv.resolve())
    assert set(found[1:]) == template_files()
    assert (venv / "bin" / "conduit").is_file()


@pytest.mark.parametrize(
    "code",
    [
        "import conduit, conduit.manifest, conduit.cli.main, conduit.api",
        "from conduit import Conduit, model_type, hardware; from conduit.manifest.schema import schema_text; schema_text()",
        "from conduit.cli.main import main; main(['validate', {example!r}])",
    ],
    ids=["imports", "api and schema", "validate"],
)
def test_light_entry_points_import_no_frameworks(code: str, tmp_path: Path):
    example = tmp_path / "conduit.yaml"
    (tmp_path / "model.pkl").write_bytes(pickle.dumps("stand-in"))  # validate reads its opcodes
    example.write_text("name: iris\nflow: [sklearn, model.pkl]\n")
    script = code.format(example=str(example)) + f"\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    assert run([sys.executable, "-c", script], cwd=tmp_path).stdout.splitlines()[-1] == "[]"
