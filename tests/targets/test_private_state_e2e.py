"""Issue 16, item 3, end to end: after a real `conduit apply` and a request, nothing under
CONDUIT_HOME (conduit.db and its -wal/-shm, logs, locks, run/, metrics, prediction logs, the
BentoML store) is open to group or others, though the command started under the usual umask."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conduit.store import Store
from conftest import TEST_KEY
from private_state import open_to_others
from serving.trained import iris_folder

pytestmark = pytest.mark.e2e


def test_a_real_apply_leaves_nothing_open_to_others(conduit_home: Path, tmp_path: Path):
    manifest = iris_folder(tmp_path, name="private-e2e")
    conduit = [sys.executable, "-m", "conduit.cli.main"]
    applied = subprocess.run([*conduit, "apply", str(manifest.base_dir)], umask=0o022, capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stderr
    endpoint = Store().require("private-e2e").endpoint
    response = httpx.post(endpoint, json=[[5.1, 3.5, 1.4, 0.2]], headers={"Authorization": TEST_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    assert (conduit_home / "conduit.db").is_file() and any((conduit_home / "bentoml").rglob("*"))
    assert open_to_others(conduit_home) == []
