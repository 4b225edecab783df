"""The README's quick start as a new user meets it: the default state folder, `~/.conduit`, is a
hidden folder, and BentoML refuses to build from a path with one in it. Every other test sets
CONDUIT_HOME to a temporary folder, so these are the ones that prove the default works."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conduit import build as build_module
from conduit.errors import DeployError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from readme_command import README, command  # noqa: E402

CONDUIT = str(Path(sys.executable).parent / "conduit")


def new_user_env(home: Path) -> dict[str, str]:
    """The environment of a user who has never run conduit: a fresh HOME, no CONDUIT_* set."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONDUIT_")}
    return {**env, "HOME": str(home), "CONDUIT_API_KEY": "Zq3-quickstart-test-key-8vW2pL"}


def test_the_readme_opens_with_the_quick_start_and_the_test_command():
    text = README.read_text(encoding="utf-8")
    quickstart, tests = command(1, text), command(2, text)
    assert quickstart.startswith("bash scripts/setup.sh sklearn && ")
    assert "conduit apply examples/iris/conduit.yaml" in quickstart and "curl" in quickstart
    assert tests == "bash scripts/test.sh"


def test_ci_runs_the_readme_commands_verbatim_with_a_fresh_home():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/readme_command.py 1" in ci and "scripts/readme_command.py 2" in ci
    assert 'HOME="$FRESH_HOME" bash -c "$QUICKSTART"' in ci
    assert 'unset "${!CONDUIT_@}"' in ci
    assert '"prediction_ids"' in ci  # fails unless a prediction was printed


def test_the_quick_start_installs_no_deep_learning_framework():
    setup = (REPO / "scripts" / "setup.sh").read_text(encoding="utf-8")
    quick_extras = command(1, README.read_text(encoding="utf-8")).split("&&")[0].split()[-1]
    torch_extras = setup.split('case ",$EXTRAS," in')[1].split(")")[0]
    assert quick_extras == "sklearn"
    assert f",{quick_extras}," not in torch_extras


def test_a_hidden_state_folder_renders_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / ".conduit"))
    workspace = build_module.build_workspace()
    assert build_module.hidden_part(workspace) is None
    assert workspace == Path(tempfile.gettempdir())


def test_a_visible_state_folder_renders_inside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "state"))
    assert build_module.build_workspace() == tmp_path / "state" / "tmp"


def test_no_visible_folder_anywhere_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / ".conduit"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ".tmp"))
    with pytest.raises(DeployError, match="set TMPDIR to a folder without a leading dot in its path"):
        build_module.build_workspace()


@pytest.mark.e2e
def test_apply_and_predict_with_the_default_state_folder(tmp_path):
    pytest.importorskip("sklearn")
    example = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", example)
    shutil.copy(REPO / "conduit.schema.json", tmp_path / "conduit.schema.json")
    env = new_user_env(tmp_path / "home")
    subprocess.run([sys.executable, str(example / "train.py")], check=True, env=env)
    try:
        subprocess.run([CONDUIT, "apply", str(example / "conduit.yaml")], check=True, env=env, timeout=300)
        assert (tmp_path / "home" / ".conduit" / "conduit.db").is_file()
        endpoint = subprocess.run(
            [CONDUIT, "status", "iris", "--endpoint"], check=True, env=env, capture_output=True, text=True
        ).stdout.strip()
        assert endpoint == "http://127.0.0.1:8765/v1/default/iris/predict"  # the README's: the default gateway port
        request = urllib.request.Request(
            endpoint,
            data=(example / "request.json").read_bytes(),
            headers={"Authorization": env["CONDUIT_API_KEY"], "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert len(body["result"]) == len(body["prediction_ids"]) == 2
    finally:
        subprocess.run([CONDUIT, "delete", "iris"], env=env, timeout=120)
