"""`conduit validate`: every problem printed, exit 0 / 1 / 2, GitHub annotations."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from conduit.cli.main import main

GOOD = "name: iris\nflow: [sklearn, model.pkl]\n"
BAD = "name: Iris\nflow: [sklearn, missing.pkl]\ncpu: 0\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps("stand-in"))  # validate reads its opcodes
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_valid_manifest(folder: Path, capsys: pytest.CaptureFixture):
    # With a sink for its prediction log, the kubernetes target honours every field, so nothing is
    # warned (the local target's warnings: tests/cli/test_unhonoured.py).
    (folder / "conduit.yaml").write_text(GOOD + "prediction_log:\n  url: http://sink.example.svc\n")
    argv = ["validate", "--target", "kubernetes", str(folder / "conduit.yaml")]
    assert run(argv, capsys) == (0, f"{folder}/conduit.yaml: valid (iris)\n", "")


def test_an_invalid_manifest_prints_every_problem(folder: Path, capsys: pytest.CaptureFixture):
    (folder / "conduit.yaml").write_text(BAD)
    code, out, _ = run(["validate", str(folder / "conduit.yaml")], capsys)
    file = f"{folder}/conduit.yaml"
    assert code == 1
    assert out.splitlines() == [
        f"{file}:1:7: name: name 'Iris' may hold only lowercase letters, digits and hyphens (hint: did you mean `iris`?)",
        f"{file}:2:17: flow[0].path: file 'missing.pkl' not found next to the manifest (hint: looked for {folder}/missing.pkl)",
        f"{file}:3:6: cpu: cpu must be at least 1, got 0",
        f"{file}: invalid (3 problems)",
    ]


def test_folders_are_searched(folder: Path, capsys: pytest.CaptureFixture):
    for sub in ("a", "b", ".hidden"):
        (folder / sub).mkdir()
        (folder / sub / "model.pkl").write_bytes(pickle.dumps("stand-in"))  # validate reads its opcodes
    (folder / "a" / "conduit.yaml").write_text(GOOD)
    (folder / "b" / "staging.conduit.yaml").write_text(BAD.replace("missing.pkl", "model.pkl"))
    (folder / ".hidden" / "conduit.yaml").write_text(BAD)
    code, out, _ = run(["validate", str(folder)], capsys)
    assert code == 1
    assert out.splitlines()[0] == f"{folder}/a/conduit.yaml: valid (iris)"
    assert out.splitlines()[-2:] == [f"{folder}/b/staging.conduit.yaml: invalid (2 problems)", "1 valid, 1 invalid"]
    assert ".hidden" not in out


def test_usage_errors_exit_2(folder: Path, capsys: pytest.CaptureFixture):
    assert run(["validate", str(folder / "nope.yaml")], capsys) == (2, "", f"error: no such file or folder: {folder}/nope.yaml\n")
    assert run(["validate", str(folder)], capsys) == (2, "", f"error: no conduit.yaml or *.conduit.yaml under {folder}\n")
    assert run(["validate", "--bogus"], capsys)[0] == 2


def test_github_annotations(folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    (folder / "conduit.yaml").write_text("name: iris\nflow: [torch, model.pkl]\nhardware: GPU\ncpu: 0\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, _ = run(["validate", str(folder / "conduit.yaml")], capsys)
    annotations = [line for line in out.splitlines() if line.startswith("::")]
    assert code == 1
    assert annotations == [
        f"::warning file={folder}/conduit.yaml,line=3,col=11::hardware: hardware GPU is deprecated "
        "(hint: use TURING_5000 (RTX 5000, 16 GB))",
        f"::error file={folder}/conduit.yaml,line=4,col=6::cpu: cpu must be at least 1, got 0",
    ]


def test_no_annotations_outside_github(folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    (folder / "conduit.yaml").write_text(BAD)
    assert "::error" not in run(["validate", str(folder)], capsys)[1]


def test_the_installed_command(folder: Path):
    (folder / "conduit.yaml").write_text(BAD)
    conduit = Path(sys.executable).parent / "conduit"
    done = subprocess.run([str(conduit), "validate"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == "conduit.yaml: invalid (3 problems)"
    assert done.stdout.splitlines()[0].startswith("conduit.yaml:1:7: name: name 'Iris' may hold only")
