"""`conduit init`: a starter manifest that validates (at once, or once the artifact exists)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conduit.cli.main import main
from conduit.manifest import load

STARTER = (
    "# yaml-language-server: $schema=conduit.schema.json\n"
    "apiVersion: conduit/v1\n"
    "name: my-project\n"
    "flow:\n"
    "  - model_type: sklearn\n"
    "    path: model.pkl\n"
    "hardware: CPU\n"
    "cpu: 2\n"
    "memory: 8.0\n"
    "cooldown: 60\n"
    "min_replicas: 0\n"
    "max_replicas: 2\n"
    "force_rebuild: false\n"
    'python_version: "3.10"\n'
)


def test_init_in_an_empty_folder_validates_once_the_model_is_there(tmp_path: Path, capsys: pytest.CaptureFixture):
    project = tmp_path / "My_Project"
    assert main(["init", str(project)]) == 0
    assert (project / "conduit.yaml").read_text() == STARTER
    assert (project / "conduit.schema.json").is_file()
    out = capsys.readouterr().out
    assert f"next: put your model at {project}/model.pkl" in out
    assert main(["validate", str(project)]) == 1
    (project / "model.pkl").write_text("x")
    assert main(["validate", str(project)]) == 0


@pytest.mark.parametrize(
    "make, model_type, hardware",
    [
        (lambda folder: (folder / "net.onnx").write_text("x"), "onnx", "AMPERE_A5000"),
        (lambda folder: (folder / "script.pt").write_text("x"), "torch", "AMPERE_A5000"),
        (lambda folder: (folder / "ner").mkdir() or (folder / "ner" / "meta.json").write_text("{}"), "spacy", "CPU"),
        (lambda folder: (folder / "bert").mkdir() or (folder / "bert" / "config.json").write_text("{}"),
         "huggingface_pipeline", "AMPERE_A5000"),
    ],
    ids=["onnx", "torch", "spacy", "huggingface"],
)
def test_init_finds_the_artifact_and_validates_at_once(tmp_path: Path, capsys, make, model_type: str, hardware: str):
    make(tmp_path)
    assert main(["init", str(tmp_path), "--name", "found"]) == 0
    manifest = load(tmp_path)
    assert (manifest.flow[0].model_type.value, manifest.hardware.value) == (model_type, hardware)
    assert "is valid" in capsys.readouterr().out


def test_init_with_options(tmp_path: Path):
    (tmp_path / "model.json").write_text("{}")
    target = tmp_path / "prod.conduit.yaml"
    assert main(["init", "--name", "xgb", "--model-type", "xgboost_classifier", "--path", "model.json", str(target)]) == 0
    manifest = load(target)
    assert (manifest.name, manifest.flow[0].model_type.value, manifest.flow[0].path) == ("xgb", "xgboost_classifier", "model.json")


def test_init_uses_a_schema_up_the_tree(tmp_path: Path):
    (tmp_path / "conduit.schema.json").write_text("{}")
    assert main(["init", str(tmp_path / "deploy")]) == 0
    assert (tmp_path / "deploy" / "conduit.yaml").read_text().startswith("# yaml-language-server: $schema=../conduit.schema.json\n")
    assert not (tmp_path / "deploy" / "conduit.schema.json").exists()


def test_init_refuses_to_overwrite_and_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "conduit.yaml").write_text("keep me\n")
    assert main(["init", str(tmp_path)]) == 2
    assert (tmp_path / "conduit.yaml").read_text() == "keep me\n"
    assert main(["init", "--force", "--name", "Bad_Name", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: name 'Bad_Name' may hold only lowercase letters, digits and hyphens (hint: did you mean `bad-name`?)"
    )
    assert main(["init", "--force", "--name", "good", str(tmp_path)]) == 0
    assert "name: good\n" in (tmp_path / "conduit.yaml").read_text()
