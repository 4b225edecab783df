"""Issue 16, item 3, end to end: after a real `conduit apply` and a request, nothing under
CONDUIT_HOME (conduit.db and its -wal/-shm, logs, locks, run/ with the gateway's state.json and
keeper.json, metrics, prediction logs, the BentoML store, envs/) is open to group or others, though
the command started under the usual umask; and the API key is in no file there and in the
environment of no process the gateway runs, while the replica's holds its hash.

The replica starts cold (CONDUIT_WARM_START=0) so that its /proc/<pid>/environ is the environment
it was started with: a replica forked from a zygote shows the zygote's, which has no key at all."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from conduit.serving.auth import API_KEY_SHA256_ENV, key_sha256
from conduit.store import Store
from conduit.targets import local
from conftest import TEST_KEY, gateway_processes, replicas_of
from private_state import open_to_others
from serving.trained import iris_folder

pytestmark = pytest.mark.e2e
NAME = "private-e2e"


def environment_of(process: psutil.Process) -> bytes:
    return Path(f"/proc/{process.pid}/environ").read_bytes()


@pytest.fixture(scope="module")
def applied(conduit_home: Path, tmp_path_factory):
    manifest = iris_folder(tmp_path_factory.mktemp("private"), name=NAME)
    conduit = [sys.executable, "-m", "conduit.cli.main"]
    env = {**os.environ, "CONDUIT_WARM_START": "0"}
    applied = subprocess.run([*conduit, "apply", str(manifest.base_dir)], umask=0o022, env=env, capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stderr
    endpoint = local.status(NAME).endpoint
    response = httpx.post(endpoint, json=[[5.1, 3.5, 1.4, 0.2]], headers={"Authorization": TEST_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    return conduit_home


def test_a_real_apply_leaves_nothing_open_to_others(applied: Path):
    home = applied
    assert (home / "conduit.db").is_file() and any((home / "bentoml").rglob("*"))
    assert (home / "run" / "gateway" / "state.json").is_file() and (home / "run" / "gateway" / "keeper.json").is_file()
    from conduit.environments import envs_home

    envs = envs_home()  # $CONDUIT_HOME/envs, or the suite's shared $CONDUIT_ENVS
    assert any(envs.iterdir())  # the Bento's own environment
    assert open_to_others(home) == []
    # The environments' folders (their packages are public, but not anyone's to change or to list).
    assert [path for path in (envs, *envs.iterdir()) if path.stat().st_mode & 0o077] == []


def test_the_key_is_in_no_file_and_no_environment_and_the_replica_holds_its_hash(applied: Path):
    needle = TEST_KEY.encode()
    files = [path for path in applied.rglob("*") if path.is_file() and not path.is_symlink()]
    assert not [str(path) for path in files if needle in path.read_bytes()]
    everyone = gateway_processes()  # keeper, gateway, the replica's leader and its workers
    assert not [process.pid for process in everyone if needle in environment_of(process)]
    (replica,) = replicas_of(NAME)
    assert not replica["warm"]
    leader = psutil.Process(replica["pid"])
    assert f"{API_KEY_SHA256_ENV}={key_sha256(TEST_KEY)}".encode() in environment_of(leader).split(b"\0")
    assert Store().serving(NAME).key_sha256 == key_sha256(TEST_KEY)
