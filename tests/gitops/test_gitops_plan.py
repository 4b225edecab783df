"""`conduit plan` on real temporary git repositories (GitPython): what a commit changes, per
deployment, and why."""
from __future__ import annotations

import json
import pickle
from functools import lru_cache
from pathlib import Path

import pytest

git = pytest.importorskip("git")
from conduit.cli.main import main
from conduit.errors import UsageError
from conduit.gitops.plan import plan
from conduit.gitops.report import render

MANIFEST = """\
name: {name}
flow:
  - model_type: sklearn_classifier
    path: model.pkl
    post: hooks.py:to_labels
requirements_file: requirements.txt
max_replicas: {max_replicas}
python_version: 3.10
"""


@lru_cache(maxsize=None)
def train(c: float) -> bytes:
    """A real tiny classifier; a different C gives different weights and so different bytes."""
    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return pickle.dumps(LogisticRegression(C=c, max_iter=300).fit(features, labels))


def write_deployment(folder: Path, name: str, c: float = 1.0, max_replicas: int = 2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conduit.yaml").write_text(MANIFEST.format(name=name, max_replicas=max_replicas))
    (folder / "model.pkl").write_bytes(train(c))
    (folder / "hooks.py").write_text("def to_labels(rows):\n    return rows\n")
    (folder / "requirements.txt").write_text("numpy\n")


def commit_all(repo: git.Repo, message: str) -> str:
    repo.git.add(A=True)
    return repo.index.commit(message).hexsha


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    repository = git.Repo.init(tmp_path / "models-repo")
    with repository.config_writer() as config:
        config.set_value("user", "name", "conduit tests")
        config.set_value("user", "email", "tests@conduit.invalid")
    root = Path(repository.working_tree_dir)
    write_deployment(root / "deploy" / "iris", "iris")
    write_deployment(root / "deploy" / "other", "other", c=0.5)
    repository.base = commit_all(repository, "two deployments")
    return repository


def actions(repo: git.Repo, paths=None, since=None) -> dict[str, tuple[str, str]]:
    root = Path(repo.working_tree_dir)
    entries = plan(paths or [root], changed_since=since or repo.base, repo=repo)
    return {entry.name: (entry.action, entry.reason) for entry in entries}


def root_of(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir)


def test_nothing_changed(repo) -> None:
    assert actions(repo) == {"iris": ("unchanged", "nothing changed"), "other": ("unchanged", "nothing changed")}


def test_a_retrained_artifact_updates_only_its_deployment(repo) -> None:
    (root_of(repo) / "deploy/iris/model.pkl").write_bytes(train(0.1))
    commit_all(repo, "retrain iris")
    assert actions(repo) == {"iris": ("update", "model artifact changed"), "other": ("unchanged", "nothing changed")}


def test_a_changed_manifest(repo) -> None:
    write_manifest = root_of(repo) / "deploy/other/conduit.yaml"
    write_manifest.write_text(MANIFEST.format(name="other", max_replicas=5))
    commit_all(repo, "scale other")
    assert actions(repo)["other"] == ("update", "manifest changed")


@pytest.mark.parametrize("support_file", ["hooks.py", "requirements.txt"])
def test_a_changed_hook_or_requirements_file(repo, support_file: str) -> None:
    with open(root_of(repo) / "deploy/iris" / support_file, "a") as handle:
        handle.write("# changed\n")
    commit_all(repo, f"change {support_file}")
    assert actions(repo)["iris"] == ("update", "requirements or hook file changed")


def test_a_deleted_manifest_deletes_the_deployment(repo) -> None:
    repo.index.remove(["deploy/other/conduit.yaml"], working_tree=True)
    repo.index.commit("retire other")
    entries = {e.name: e for e in plan([root_of(repo)], changed_since=repo.base, repo=repo)}
    assert (entries["other"].action, entries["other"].reason) == ("delete", "manifest removed")
    assert entries["other"].path == "deploy/other/conduit.yaml"


def test_a_new_manifest_is_created_even_before_git_add(repo) -> None:
    write_deployment(root_of(repo) / "deploy/new-model", "new-model")
    assert actions(repo)["new-model"] == ("create", "new manifest")


def test_moving_a_deployment_folder_changes_nothing(repo) -> None:
    repo.git.mv("deploy/iris", "deploy/iris-moved")
    commit_all(repo, "move iris")
    entries = {e.name: e for e in plan([root_of(repo)], changed_since=repo.base, repo=repo)}
    assert (entries["iris"].action, entries["iris"].path) == ("unchanged", "deploy/iris-moved/conduit.yaml")


def test_renaming_the_deployment_deletes_the_old_name_and_creates_the_new(repo) -> None:
    (root_of(repo) / "deploy/iris/conduit.yaml").write_text(MANIFEST.format(name="iris-v2", max_replicas=2))
    commit_all(repo, "rename iris")
    found = actions(repo)
    assert (found["iris"], found["iris-v2"]) == (("delete", "manifest removed"), ("create", "new manifest"))


def test_an_uncommitted_change_counts(repo) -> None:
    (root_of(repo) / "deploy/iris/model.pkl").write_bytes(train(0.2))
    assert actions(repo)["iris"] == ("update", "model artifact changed")


def test_an_artifact_git_ignores_is_never_seen_to_change(repo) -> None:
    (root_of(repo) / ".gitignore").write_text("*.pkl\n")
    repo.index.remove(["deploy/iris/model.pkl", "deploy/other/model.pkl"])
    base = commit_all(repo, "stop tracking models")
    (root_of(repo) / "deploy/iris/model.pkl").write_bytes(train(0.3))
    assert actions(repo, since=base)["iris"] == ("unchanged", "nothing changed")


def test_a_model_folder_changes_when_a_file_inside_it_does(repo) -> None:
    root = root_of(repo)
    folder = root / "deploy/spacy"
    (folder / "textcat").mkdir(parents=True)
    (folder / "conduit.yaml").write_text("name: spacy-cats\nflow: [spacy, textcat]\n")
    (folder / "textcat" / "meta.json").write_text('{"lang": "en"}')
    base = commit_all(repo, "spacy")
    (folder / "textcat" / "meta.json").write_text('{"lang": "de"}')
    assert actions(repo, since=base)["spacy-cats"] == ("update", "model artifact changed")


def test_paths_limit_the_plan(repo) -> None:
    assert set(actions(repo, paths=[root_of(repo) / "deploy/other"])) == {"other"}


@pytest.mark.parametrize("since", [None, "0" * 40])
def test_without_a_baseline_everything_is_new(repo, since) -> None:
    entries = plan([root_of(repo)], changed_since=since, repo=repo)
    assert {(e.name, e.action, e.reason) for e in entries} == {
        ("iris", "create", "new manifest"),
        ("other", "create", "new manifest"),
    }


def test_an_unknown_ref_is_a_usage_error(repo) -> None:
    with pytest.raises(UsageError, match="unknown git ref 'no-such-branch'"):
        plan([root_of(repo)], changed_since="no-such-branch", repo=repo)


def test_two_manifests_with_one_name_are_an_error(repo) -> None:
    write_deployment(root_of(repo) / "deploy/copy", "iris")
    with pytest.raises(UsageError, match="two manifests deploy 'iris'"):
        plan([root_of(repo)], changed_since=repo.base, repo=repo)


def test_outside_a_git_repository_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not inside a git repository"):
        plan([tmp_path])


def test_formats(repo) -> None:
    (root_of(repo) / "deploy/iris/model.pkl").write_bytes(train(0.1))
    entries = plan([root_of(repo)], changed_since=repo.base, repo=repo)
    document = json.loads(render(entries, "json", repo.base))
    assert [(e["name"], e["action"]) for e in document["entries"]] == [("iris", "update"), ("other", "unchanged")]
    markdown = render(entries, "markdown", repo.base).splitlines()
    assert markdown[2] == "| action | deployment | manifest | reason |"
    assert "| 🔄 update | `iris` | `deploy/iris/conduit.yaml` | model artifact changed |" in markdown
    assert markdown[-1] == "**0 to create, 1 to update, 0 to delete, 1 unchanged**"
    text = render(entries, "text", repo.base).splitlines()
    assert text[0].split() == ["~", "update", "iris", "deploy/iris/conduit.yaml", "model", "artifact", "changed"]


def test_the_cli_prints_the_plan(repo, capsys, monkeypatch) -> None:
    monkeypatch.chdir(root_of(repo))
    (root_of(repo) / "deploy/other/requirements.txt").write_text("numpy\norjson\n")
    assert main(["plan", "--changed-since", repo.base, "--format", "json", "deploy"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {e["name"]: e["reason"] for e in document["entries"]}["other"] == "requirements or hook file changed"
    assert main(["plan", "--changed-since", "nope"]) == 2
