"""A revision's processes are found by the log they write, however they were re-parented, and
stopped: SIGTERM first, SIGKILL for what ignores it; a process writing another log is left alone.
(Plain processes: the real case, replicas left by a gateway killed outright and stopped by
`conduit delete`, is in test_reliability.)"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from conduit.targets.local import processes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="read from /proc")
SLEEPER = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.{}); print('set', file=sys.stderr, flush=True); time.sleep(300)"
# Starts a sleeper in a session of its own and exits at once, as a replica whose gateway died.
ORPHANING = (
    "import subprocess, sys; "
    "print(subprocess.Popen([sys.executable, '-c', sys.argv[1]], start_new_session=True, stderr=subprocess.DEVNULL).pid, file=sys.stderr)"
)


def writing_to(log: Path, *command: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", *command], stdout=out, stderr=subprocess.PIPE, text=True)


def test_a_revisions_processes_are_found_by_their_log_and_stopped_however_orphaned(tmp_path):
    log, other_log = tmp_path / "demo-r1.log", tmp_path / "other-r1.log"
    parent = writing_to(log, ORPHANING, SLEEPER.format("SIG_DFL"))
    orphan = int(parent.communicate(timeout=60)[1])
    stubborn = writing_to(log, SLEEPER.format("SIG_IGN"))
    assert stubborn.stderr.readline() == "set\n"  # SIGTERM ignored from here on
    bystander = writing_to(other_log, SLEEPER.format("SIG_DFL"))
    try:
        assert psutil.Process(orphan).ppid() != parent.pid  # re-parented: no longer anyone's child here
        assert {process.pid for process in processes.writers_of(log)} == {orphan, stubborn.pid}
        processes.stop_writers(log, grace_s=1)
        assert processes.writers_of(log) == []
        assert stubborn.wait(timeout=60) == -9  # it ignored SIGTERM
        assert bystander.poll() is None
        assert [process.pid for process in processes.writers_of(other_log)] == [bystander.pid]
    finally:
        for process in (stubborn, bystander):
            process.kill()
            process.wait()
        if psutil.pid_exists(orphan):
            psutil.Process(orphan).kill()
