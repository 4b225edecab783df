"""Issue 16, item 1: a manifest names only files inside its own tree.

Each variant below once copied a file from outside the manifest's folder into the Bento (an
artifact, a hook or the requirements). Now validation refuses every one with the same message,
and render refuses it again on a Manifest that skipped validation (files may change in between),
before anything is written.
"""
from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from ruamel.yaml import YAML

from conduit.api import Conduit
from conduit.manifest import ManifestInvalid, load
from conduit.manifest.model import Manifest
from conduit.render import RenderError, render

SECRET = "root:x:0:0:the runner's secret\n"
HOOKS = "def to_features(data):\n    return data\n"
HF_STAGE = "name: leak\nflow:\n  - model_type: huggingface_pipeline\n    task: text-classification\n    model: {model}\n"


class Variant(NamedTuple):
    id: str
    text: str  # the manifest; {outside} is the folder next to the project
    links: dict[str, str]  # link in the project -> what it points at ({outside} filled in)
    key: str
    written: str
    leads_to: str
    link: str = ""  # the link inside a folder artifact that leads out


VARIANTS = [
    Variant("absolute path", "name: leak\nflow: [sklearn, '{outside}/secret.pkl']\n", {},
            "flow[0].path", "{outside}/secret.pkl", "{outside}/secret.pkl"),
    Variant("../ escape", "name: leak\nflow: [sklearn, ../outside/secret.pkl]\n", {},
            "flow[0].path", "../outside/secret.pkl", "{outside}/secret.pkl"),
    Variant("symlink file", "name: leak\nflow: [sklearn, model.pkl]\n", {"model.pkl": "{outside}/secret.pkl"},
            "flow[0].path", "model.pkl", "{outside}/secret.pkl"),
    Variant("symlink folder", "name: leak\nflow: [spacy, ner]\n", {"ner": "{outside}/folder"},
            "flow[0].path", "ner", "{outside}/folder"),
    Variant("symlink inside a spaCy folder", "name: leak\nflow: [spacy, ner]\n", {"ner/vocab": "{outside}/passwd"},
            "flow[0].path", "ner", "{outside}/passwd", "ner/vocab"),
    Variant("symlink inside a Hugging Face folder", HF_STAGE.format(model="hf"), {"hf/config.json": "{outside}/passwd"},
            "flow[0].model", "hf", "{outside}/passwd", "hf/config.json"),
    Variant("Hugging Face folder outside", HF_STAGE.format(model="../outside/folder"), {},
            "flow[0].model", "../outside/folder", "{outside}/folder"),
    Variant("hook file via ../", "name: leak\nflow: [sklearn, model.pkl, {{pre: '../outside/hooks.py:to_features'}}]\n",
            {}, "flow[0].pre", "../outside/hooks.py", "{outside}/hooks.py"),
    Variant("hook via symlink", "name: leak\nflow: [sklearn, model.pkl, {{pre: 'prep.py:to_features'}}]\n",
            {"prep.py": "{outside}/hooks.py"}, "flow[0].pre", "prep.py", "{outside}/hooks.py"),
    Variant("requirements_file absolute", "name: leak\nflow: [sklearn, model.pkl]\nrequirements_file: '{outside}/passwd'\n",
            {}, "requirements_file", "{outside}/passwd", "{outside}/passwd"),
    Variant("requirements_file ../", "name: leak\nflow: [sklearn, model.pkl]\nrequirements_file: ../outside/passwd\n",
            {}, "requirements_file", "../outside/passwd", "{outside}/passwd"),
    Variant("requirements_file symlink", "name: leak\nflow: [sklearn, model.pkl]\nrequirements_file: requirements.txt\n",
            {"requirements.txt": "{outside}/passwd"}, "requirements_file", "requirements.txt", "{outside}/passwd"),
]


def make_tree(root: Path, variant: Variant) -> Path:
    """`root/outside` with the secrets, `root/project` with the manifest, its own files and the links."""
    outside, project = root / "outside", root / "project"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.pkl").write_bytes(pickle.dumps("stand-in"))
    (outside / "passwd").write_text(SECRET)
    (outside / "folder" / "config.json").write_text(SECRET)
    (outside / "hooks.py").write_text(HOOKS)
    project.mkdir()
    if "model.pkl" not in variant.links:
        (project / "model.pkl").write_bytes(pickle.dumps("stand-in"))
    for link, target in variant.links.items():
        (project / link).parent.mkdir(parents=True, exist_ok=True)
        (project / link).symlink_to(target.format(outside=outside))
    (project / "conduit.yaml").write_text(variant.text.format(outside=outside))
    return project


def expected_message(variant: Variant, outside: Path) -> str:
    written, leads_to = variant.written.format(outside=outside), variant.leads_to.format(outside=outside)
    if variant.link:
        return f"'{written}' holds a link to outside the manifest's folder: {variant.link} -> {leads_to}"
    return f"'{written}' is outside the manifest's folder: it resolves to {leads_to}"


def unchecked_manifest(project: Path) -> Manifest:
    """The manifest as pydantic reads it, without the semantics phase: what render must not trust."""
    data = YAML(typ="safe").load((project / "conduit.yaml").read_text())
    return Manifest.model_validate(data).with_base_dir(project)


@pytest.mark.parametrize("variant", VARIANTS, ids=[variant.id for variant in VARIANTS])
def test_validate_refuses_a_path_leading_out_of_the_tree(variant: Variant, tmp_path: Path):
    project = make_tree(tmp_path, variant)
    with pytest.raises(ManifestInvalid) as caught:
        load(project)
    problems = caught.value.problems
    assert [(problem.key, problem.message) for problem in problems] == [
        (variant.key, expected_message(variant, tmp_path / "outside"))
    ]
    assert problems[0].hint == f"copy it under {project} (cp -L follows links): a bento ships every file its manifest names"


@pytest.mark.parametrize("variant", VARIANTS, ids=[variant.id for variant in VARIANTS])
def test_render_refuses_it_again_and_writes_nothing(variant: Variant, tmp_path: Path):
    project = make_tree(tmp_path, variant)
    out = tmp_path / "out"
    with pytest.raises(RenderError) as caught:
        render(unchecked_manifest(project), out)
    assert expected_message(variant, tmp_path / "outside") in str(caught.value)
    assert not out.exists() or not any(out.rglob("*"))


def test_a_file_elsewhere_in_the_git_work_tree_is_accepted(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "models" / "model.pkl").write_bytes(pickle.dumps("stand-in"))
    (repo / "deploy").mkdir()
    (repo / "deploy" / "scaler.pkl").symlink_to(repo / "models" / "model.pkl")  # a link that stays inside
    (repo / "deploy" / "conduit.yaml").write_text("name: ok\nflow: [[sklearn, ../models/model.pkl], [sklearn, scaler.pkl]]\n")
    assert [stage.path for stage in load(repo / "deploy").flow] == ["../models/model.pkl", "scaler.pkl"]


def test_outside_the_git_work_tree_names_the_work_tree(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (tmp_path / "secret.pkl").write_bytes(pickle.dumps("stand-in"))
    (repo / "conduit.yaml").write_text("name: leak\nflow: [sklearn, ../secret.pkl]\n")
    with pytest.raises(ManifestInvalid) as caught:
        load(repo)
    assert [problem.message for problem in caught.value.problems] == [
        f"'../secret.pkl' is outside the git work tree: it resolves to {tmp_path}/secret.pkl"
    ]


def test_a_folder_linking_back_into_itself_is_walked_once(tmp_path: Path):
    (tmp_path / "ner" / "vocab").mkdir(parents=True)
    (tmp_path / "ner" / "vocab" / "again").symlink_to(tmp_path / "ner")
    (tmp_path / "conduit.yaml").write_text("name: ok\nflow: [spacy, ner]\n")
    assert load(tmp_path).flow[0].path == "ner"


def test_the_python_api_refuses_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = make_tree(tmp_path, VARIANTS[0])
    monkeypatch.chdir(project)
    with pytest.raises(ManifestInvalid) as caught:
        Conduit(name="leak", flow=("sklearn", os.fspath(tmp_path / "outside" / "secret.pkl")))
    assert [problem.message for problem in caught.value.problems] == [expected_message(VARIANTS[0], tmp_path / "outside")]


@pytest.mark.parametrize(
    ("key", "line", "leads_to"),
    [
        ("requirements_file", "requirements_file: ../.git/config\n", ".git/config"),
        ("flow[0].pre", "flow: [sklearn, model.pkl, {pre: '../.git/hooks/pre-commit.py:run'}]\n", ".git/hooks/pre-commit.py"),
    ],
    ids=["requirements_file", "hook"],
)
def test_git_s_own_folder_is_not_part_of_the_tree(tmp_path: Path, key: str, line: str, leads_to: str):
    """A CI checkout keeps its token in .git/config: inside the work tree, and never to be shipped."""
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "http.extraheader", "AUTHORIZATION: basic SECRET"], check=True)
    (repo / ".git" / "hooks" / "pre-commit.py").write_text(HOOKS)
    (repo / "deploy" / "model.pkl").write_bytes(pickle.dumps("stand-in"))
    flow = "" if line.startswith("flow") else "flow: [sklearn, model.pkl]\n"
    (repo / "deploy" / "conduit.yaml").write_text(f"name: leak\n{flow}{line}")
    with pytest.raises(ManifestInvalid) as caught:
        load(repo / "deploy")
    [problem] = caught.value.problems
    assert problem.key == key
    assert problem.message.endswith(f"is inside git's own folder {repo / '.git'}: it resolves to {repo / leads_to}")
    assert problem.hint == "name a file of the work tree: .git holds git's configuration and credentials, never model files"
    with pytest.raises(RenderError, match="inside git's own folder"):
        render(unchecked_manifest(repo / "deploy"), tmp_path / "out")


def test_a_link_into_git_s_folder_inside_a_model_folder_is_refused(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "ner").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "ner" / "vocab").symlink_to(repo / ".git" / "config")
    (repo / "conduit.yaml").write_text("name: leak\nflow: [spacy, ner]\n")
    with pytest.raises(ManifestInvalid) as caught:
        load(repo)
    assert [problem.message for problem in caught.value.problems] == [
        f"'ner' holds a link to outside the git work tree: ner/vocab -> {repo / '.git' / 'config'}"
    ]
