"""Issue 16, item 3: CONDUIT_HOME is private to its owner. Opening the store creates a home 0700
with conduit.db 0600 whatever the umask, and tightens a home made before (0755, files 0644);
the CLI's state commands run with a private umask, the commands writing the user's own files
(init, schema, render) keep the user's. The end-to-end check (a real apply) is in
tests/targets/test_private_state_e2e.py."""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conduit import paths
from conduit.cli.main import main
from conduit.store import Store
from private_state import open_to_others


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most users have (0o022), and this process's own back afterwards."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_home_is_private_whatever_the_umask(tmp_path: Path, usual_umask):
    home = tmp_path / "home"
    Store(home).set_setting("api_key_sha256", "0" * 64)
    assert open_to_others(home) == []
    assert (mode(home), mode(home / "conduit.db")) == (0o700, 0o600)


def test_opening_the_store_tightens_a_home_made_before(tmp_path: Path, usual_umask):
    home = tmp_path / "home"
    Store(home).set_setting("api_key_sha256", "0" * 64)
    (home / "logs").mkdir()
    (home / "logs" / "iris.log").write_text("a log\n")
    (home / "run").mkdir()
    (home / "run" / "start.sh").write_text("#!/bin/sh\n")
    for path, made_before in ((home, 0o755), (home / "conduit.db", 0o644), (home / "logs", 0o755),
                              (home / "logs" / "iris.log", 0o644), (home / "run" / "start.sh", 0o755)):
        path.chmod(made_before)
    assert len(open_to_others(home)) == 6  # run/ too: made under the usual umask
    Store(home)
    assert open_to_others(home) == []
    assert mode(home / "run" / "start.sh") == 0o700  # the owner keeps what it had
    assert Store(home).setting("api_key_sha256") == "0" * 64


def test_private_files_gives_the_callers_umask_back(usual_umask):
    with paths.private_files():
        assert paths.current_umask() == 0o077
    assert paths.current_umask() == 0o022


@pytest.mark.parametrize(("argv", "umask_after"), [(["ls"], 0o077), (["schema", "--help"], 0o022)])
def test_state_commands_run_private_and_user_file_commands_do_not(
    argv: list[str], umask_after: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usual_umask
):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    assert main(argv) == 0
    assert paths.current_umask() == umask_after
