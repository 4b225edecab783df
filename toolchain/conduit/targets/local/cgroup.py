"""A replica's memory limit, enforced by a memory cgroup where the OS lets conduit make one.

Each replica gets a group of its own, `conduit/<home>/<name>-r<revision>-<replica>`, made inside
the memory cgroup this process already runs in (so whatever limits this machine puts on conduit
still hold for its replicas), with the limit written before the replica's processes join it. The
replica's first process joins itself (`join_command` is what it runs: write its pid) before it
loads anything, and every process it forks is born inside.

Two layouts are understood: cgroup v1's memory controller (`/sys/fs/cgroup/memory/...`,
`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` so swap does not stretch it) and
cgroup v2 (`memory.max`, `memory.swap.max`). Anything else, or a hierarchy this user may not
write (not root, a read-only /sys), leaves replicas unlimited and `why_unavailable()` says so in
one line for `conduit status` and `validate`.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from conduit.paths import conduit_home

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_MEMORY = CGROUP_ROOT / "memory"


@dataclass(frozen=True)
class Hierarchy:
    """Where this process's memory cgroup is, and which layout it has."""

    version: int  # 1 or 2
    own_group: Path  # this process's memory cgroup: replicas' groups are made below it

    @property
    def limit_files(self) -> tuple[str, ...]:
        return ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes") if self.version == 1 else ("memory.max", "memory.swap.max")


def hierarchy(proc_cgroup: Path = Path("/proc/self/cgroup")) -> Optional[Hierarchy]:
    """This process's memory cgroup: the v1 memory controller's line of /proc/self/cgroup, else
    the v2 unified line when /sys/fs/cgroup is a v2 mount; None when neither is there."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    entries = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    for _id, controllers, path in entries:
        if "memory" in controllers.split(",") and V1_MEMORY.is_dir():
            return Hierarchy(1, V1_MEMORY / path.lstrip("/"))
    for _id, controllers, path in entries:
        if controllers == "" and (CGROUP_ROOT / "cgroup.controllers").is_file():
            return Hierarchy(2, CGROUP_ROOT / path.lstrip("/"))
    return None


def why_unavailable() -> Optional[str]:
    """None when replicas' memory limits are enforced; else why not, in one line."""
    found = hierarchy()
    if found is None:
        return "no memory cgroup on this machine (cgroup v1 memory controller or cgroup v2)"
    if found.version == 2 and "memory" not in _read(found.own_group / "cgroup.subtree_control").split():
        return f"the memory controller is not enabled for child groups of {found.own_group}"
    if not os.access(found.own_group, os.W_OK):
        return f"no writable memory cgroup ({found.own_group} is not writable: not root?)"
    return None


def home_key() -> str:
    """Short and stable per CONDUIT_HOME: two homes on one machine never share a group."""
    return hashlib.sha256(str(conduit_home().resolve()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class MemoryGroup:
    path: Path
    version: int
    limit_bytes: int

    @classmethod
    def create(cls, leaf: str, limit_bytes: int) -> MemoryGroup:
        """Make the group `conduit/<home>/<leaf>` with its limit set; one left by an earlier
        replica of that name is made afresh (its OOM count must not speak for the new one).
        Raises OSError when the OS refuses; call only when `why_unavailable()` is None."""
        found = hierarchy()
        if found is None:
            raise OSError(errno.ENOENT, "no memory cgroup")
        path = found.own_group / "conduit" / home_key() / leaf
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            path.rmdir()  # EBUSY while a process still runs in it
            path.mkdir()
        if found.version == 2:
            _enable_memory_below(found.own_group, path)
        group = cls(path, found.version, limit_bytes)
        group.set_limit()
        return group

    @classmethod
    def of_process(cls, pid: int) -> Optional[MemoryGroup]:
        """The conduit group `pid` runs in (a replica adopted after a gateway restart), if any."""
        found = hierarchy(Path(f"/proc/{pid}/cgroup"))
        if found is None or "conduit" not in found.own_group.parts:
            return None
        limit_file = found.own_group / ("memory.limit_in_bytes" if found.version == 1 else "memory.max")
        text = _read(limit_file).strip()
        return cls(found.own_group, found.version, int(text) if text.isdigit() else 0)

    @property
    def procs_file(self) -> Path:
        """A process writing its own pid here joins the group."""
        return self.path / "cgroup.procs"

    def set_limit(self) -> None:
        # v1 refuses a memsw limit below the memory limit: memory first. Swap beyond the limit is
        # refused too (v1: memory+swap = the limit; v2: no swap), so the limit means what it says.
        memory_file, swap_file = Hierarchy(self.version, self.path).limit_files
        (self.path / memory_file).write_text(str(self.limit_bytes))
        swap_value = str(self.limit_bytes) if self.version == 1 else "0"
        if (self.path / swap_file).exists():
            (self.path / swap_file).write_text(swap_value)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this group for going over the limit."""
        counts = _read(self.path / ("memory.oom_control" if self.version == 1 else "memory.events"))
        for line in counts.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return self.version == 1 and _read(self.path / "memory.failcnt").strip() not in ("", "0")

    def pids(self) -> list[int]:
        return [int(pid) for pid in _read(self.procs_file).split()]

    def remove(self, timeout_s: float = 5.0) -> None:
        """Remove the group once its processes are gone (the kernel lets go of a dead process's
        membership a moment after its exit); its parent folders too when they are left empty."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
        for parent in (self.path.parent, self.path.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                return


def remove_empty_groups() -> None:
    """Remove the groups of this CONDUIT_HOME whose replicas ended while no gateway watched
    them (a group that still holds a process is busy, and stays)."""
    found = hierarchy()
    if found is None:
        return
    home = found.own_group / "conduit" / home_key()
    for group in home.glob("*") if home.is_dir() else ():
        with contextlib.suppress(OSError):
            group.rmdir()


def describe_bytes(count: int) -> str:
    """`2.0 GB`: how a manifest states memory (GB of 10**9 bytes)."""
    return f"{count / 1e9:.1f} GB"


def _enable_memory_below(own_group: Path, leaf: Path) -> None:
    """cgroup v2: a group's children get the memory controller only when it is listed in the
    group's cgroup.subtree_control: enable it down the folders above `leaf`. (v2 refuses that
    for a group that holds processes itself: the OSError then says why replicas run unlimited.)"""
    parts = leaf.relative_to(own_group).parts
    for depth in range(len(parts)):
        control = own_group.joinpath(*parts[:depth]) / "cgroup.subtree_control"
        if "memory" not in _read(control).split():
            control.write_text("+memory")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
