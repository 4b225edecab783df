"""`conduit schema`: write, print, check."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conduit.cli.main import main
from conduit.manifest.schema import schema_text


def test_write_then_check(tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "conduit.schema.json"
    assert main(["schema", "--check", "--out", str(out)]) == 1  # missing counts as drift
    assert main(["schema", "--out", str(out)]) == 0
    assert out.read_text() == schema_text()
    assert main(["schema", "--check", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{out} is up to date"


def test_print(capsys: pytest.CaptureFixture):
    assert main(["schema", "--out", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "conduit.yaml"


def test_version(capsys: pytest.CaptureFixture):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("conduit, version ")
