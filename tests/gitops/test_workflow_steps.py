"""The reusable workflow's own shell steps, run as GitHub runs them (`bash -eo pipefail`), in real
temporary git repositories with a real `origin`: finding the base commit, planning into the job
summary, and moving the deployed tag. (Steps take every `${{ }}` value through `env:`, so the
scripts run unchanged here; building and applying are tested in tests/kubernetes.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

git = pytest.importorskip("git")

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "conduit.yml"
ZERO = "0" * 40


def steps() -> dict[str, str]:
    workflow = YAML(typ="safe", pure=True).load(WORKFLOW.read_text())
    return {step["name"]: step["run"] for step in workflow["jobs"]["conduit"]["steps"] if "run" in step}


def run_step(name: str, cwd: Path, tmp_path: Path, **env: str) -> tuple[str, str]:
    """(GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) after running step `name`."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("")
    summary.write_text("")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this venv's `conduit`
    full_env = {**os.environ, "PATH": path, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), **env}
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", steps()[name]],
                   cwd=cwd, env=full_env, check=True, capture_output=True, text=True, timeout=120)
    return output.read_text(), summary.read_text()


def commit_file(repo: git.Repo, relative: str, text: str) -> str:
    target = Path(repo.working_tree_dir) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    repo.git.add(A=True)
    return repo.index.commit(f"write {relative}").hexsha


@pytest.fixture
def clone(tmp_path: Path) -> git.Repo:
    origin = git.Repo.init(tmp_path / "origin.git", bare=True)
    work = git.Repo.clone_from(origin.git_dir, tmp_path / "work")
    with work.config_writer() as config:
        config.set_value("user", "name", "conduit tests")
        config.set_value("user", "email", "tests@conduit.invalid")
    commit_file(work, "models/iris/conduit.yaml", "name: iris\nflow: [sklearn, model.pkl]\n")
    commit_file(work, "models/iris/model.pkl", "weights v1")
    work.git.push("origin", "HEAD:refs/heads/main")
    return work


def test_the_scripts_take_expressions_only_through_env() -> None:
    assert not any("${{" in script for script in steps().values())


def test_a_first_deploy_has_no_base(clone: git.Repo, tmp_path: Path) -> None:
    output, _ = run_step("Find the base commit", Path(clone.working_tree_dir), tmp_path, MODE="deploy", TAG="conduit-deployed")
    assert output == f"ref={ZERO}\n"


def test_a_pull_request_compares_with_its_base(clone: git.Repo, tmp_path: Path) -> None:
    base = clone.head.commit.hexsha
    output, _ = run_step("Find the base commit", Path(clone.working_tree_dir), tmp_path, MODE="plan", PR_BASE=base, TAG="x")
    assert output == f"ref={base}\n"


def test_deploy_marks_the_commit_and_the_next_run_starts_from_it(clone: git.Repo, tmp_path: Path) -> None:
    work = Path(clone.working_tree_dir)
    deployed = clone.head.commit.hexsha
    run_step("Mark this commit as deployed", work, tmp_path, TAG="conduit-deployed", GITHUB_SHA=deployed)
    commit_file(clone, "models/iris/model.pkl", "weights v2")
    clone.git.tag("-d", "conduit-deployed")  # a fresh checkout: the tag comes from origin
    output, _ = run_step("Find the base commit", work, tmp_path, MODE="deploy", TAG="conduit-deployed")
    assert output == f"ref={deployed}\n"
    _, summary = run_step("Plan", work, tmp_path, BASE=deployed, PATHS="models")
    assert "| 🔄 update | `iris` | `models/iris/conduit.yaml` | model artifact changed |" in summary
