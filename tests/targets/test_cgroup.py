"""Memory cgroups for replicas (conduit.targets.local.cgroup), on this machine's real hierarchy:
the tests that need a writable one skip where `why_unavailable()` says it is not there."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conduit.targets.local import cgroup

UNAVAILABLE = cgroup.why_unavailable()
needs_cgroup = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"memory limits not enforced here: {UNAVAILABLE}")
LIMIT = 100 << 20  # a whole number of pages, so the kernel keeps it as written


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    return tmp_path


def joined(group: cgroup.MemoryGroup, code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter that joins `group` first, as a replica's leader does."""
    return subprocess.run([sys.executable, "-c", join_code(group, code)], check=False, capture_output=True, text=True, timeout=120)


def join_code(group: cgroup.MemoryGroup, code: str) -> str:
    return f"import os; open({str(group.procs_file)!r}, 'w').write(str(os.getpid()))\n{code}"


def test_hierarchy_reads_the_v1_memory_line_of_proc_cgroup(tmp_path):
    if not cgroup.V1_MEMORY.is_dir():
        pytest.skip("no cgroup v1 memory controller mounted here")
    proc = tmp_path / "cgroup"
    proc.write_text("5:devices:/\n4:memory:/some/group\n0::/\n")
    assert cgroup.hierarchy(proc) == cgroup.Hierarchy(1, cgroup.V1_MEMORY / "some" / "group")


def test_hierarchy_is_none_without_a_memory_line_or_a_file(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("5:devices:/\n")
    assert cgroup.hierarchy(proc) is None or (cgroup.CGROUP_ROOT / "cgroup.controllers").is_file()
    assert cgroup.hierarchy(tmp_path / "absent") is None


def test_home_key_differs_per_conduit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "one"))
    one = cgroup.home_key()
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "two"))
    assert cgroup.home_key() != one and len(one) == 12


def test_describe_bytes_says_gb_as_a_manifest_does():
    assert cgroup.describe_bytes(2_000_000_000) == "2.0 GB"
    assert cgroup.describe_bytes(300_000_000) == "0.3 GB"


@needs_cgroup
def test_a_group_is_made_below_this_process_with_its_limit_and_removed_with_its_parents(home):
    group = cgroup.MemoryGroup.create("limits-r1-1", LIMIT)
    try:
        own = cgroup.hierarchy().own_group
        assert group.path == own / "conduit" / cgroup.home_key() / "limits-r1-1"
        memory_file, swap_file = cgroup.Hierarchy(group.version, group.path).limit_files
        assert int((group.path / memory_file).read_text()) == LIMIT
        if (group.path / swap_file).exists() and group.version == 1:
            assert int((group.path / swap_file).read_text()) == LIMIT
        assert not group.oom_killed() and group.pids() == []
    finally:
        group.remove()
    assert not group.path.exists() and not group.path.parent.exists()


@needs_cgroup
def test_of_process_finds_the_group_a_process_joined(home):
    group = cgroup.MemoryGroup.create("joined-r1-1", LIMIT)
    try:
        ran = joined(group, "import json, os; print(open(f'/proc/{os.getpid()}/cgroup').read())")
        assert ran.returncode == 0, ran.stderr
        assert str(group.path.relative_to(cgroup.V1_MEMORY if group.version == 1 else cgroup.CGROUP_ROOT)) in ran.stdout
        assert cgroup.MemoryGroup.of_process(1) is None  # init is in no conduit group
    finally:
        group.remove()


@needs_cgroup
@pytest.mark.parametrize(("megabytes", "killed"), [(300, True), (10, False)])
def test_a_process_over_the_limit_is_killed_and_the_group_says_so_and_one_within_it_runs(home, megabytes, killed):
    group = cgroup.MemoryGroup.create(f"take-{megabytes}-r1-1", LIMIT)
    try:
        ran = joined(group, f"held = b'x' * ({megabytes} << 20)\nprint('survived')")
        assert (ran.returncode, ran.stdout.strip(), group.oom_killed()) == ((-9, "", True) if killed else (0, "survived", False))
    finally:
        group.remove()
    assert not group.path.exists()


@needs_cgroup
def test_a_group_left_by_an_earlier_replica_is_made_afresh_and_empty_ones_are_swept(home):
    greedy = cgroup.MemoryGroup.create("again-r1-1", LIMIT)
    assert joined(greedy, "held = b'x' * (300 << 20)").returncode == -9 and greedy.oom_killed()
    again = cgroup.MemoryGroup.create("again-r1-1", LIMIT)  # the same name, as after a gateway restart
    busy = cgroup.MemoryGroup.create("busy-r1-1", LIMIT)
    sleeper = subprocess.Popen([sys.executable, "-c", join_code(busy, "print(flush=True)\nimport time; time.sleep(60)")], stdout=subprocess.PIPE)
    try:
        sleeper.stdout.readline()  # it has joined
        assert not again.oom_killed()
        cgroup.remove_empty_groups()
        assert not again.path.exists() and busy.path.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        busy.remove()


def test_why_unavailable_says_why_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(cgroup, "hierarchy", lambda: None)
    assert cgroup.why_unavailable() == "no memory cgroup on this machine (cgroup v1 memory controller or cgroup v2)"
    gone = tmp_path / "gone"  # not writable, even for root
    monkeypatch.setattr(cgroup, "hierarchy", lambda: cgroup.Hierarchy(1, gone))
    assert cgroup.why_unavailable() == f"no writable memory cgroup ({gone} is not writable: not root?)"
