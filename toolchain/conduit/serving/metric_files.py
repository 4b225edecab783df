"""Prometheus's multiprocess files, written so that a full disk never takes a worker down.

Under `bentoml serve`, prometheus_client keeps each worker's counts in memory-mapped files in
PROMETHEUS_MULTIPROC_DIR, which it creates and grows sparse (`truncate`). Storing into a page the
filesystem cannot back raises SIGBUS, which kills the worker: with the disk full, a request that
added a label value (a first 400, a first /docs) killed its worker, and each restarted worker died
at its first metric, so /readyz stopped answering. `install()` has prometheus_client open its
files through `ReservedMmapedDict`, which allocates a file's blocks (`posix_fallocate`) before
they are mapped and before each growth. Where that fails for want of space, the file's values
move to anonymous memory: the worker serves on, its counts from then on are missing from /metrics
(what was written stays), and its log says so once (as soon as the log can be written).

prometheus_client's MultiProcessValue looks `MmapedDict` up in `prometheus_client.values` each
time a process opens its file for a kind of metric (also after a fork), which is where
`install()` puts the subclass: the one place conduit reaches into prometheus_client's internals.
"""
from __future__ import annotations

import contextlib
import mmap
import os
from typing import Optional

from prometheus_client import mmap_dict, values

INITIAL_SIZE: int = getattr(mmap_dict, "_INITIAL_MMAP_SIZE", 1 << 16)
# The notice not yet written to the log (the disk that refused the metrics may refuse it too).
untold: Optional[str] = None
_told = False


def install() -> bool:
    """Have this process's multiprocess metrics written by `ReservedMmapedDict`; False when
    prometheus_client is not in multiprocess mode here (its counts then live in memory anyway),
    or where the OS has no posix_fallocate (macOS: prometheus_client's own files then)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or not hasattr(os, "posix_fallocate"):
        return False
    values.MmapedDict = ReservedMmapedDict  # type: ignore[misc]
    return True


class ReservedMmapedDict(mmap_dict.MmapedDict):
    """prometheus_client's MmapedDict whose file blocks exist before they are written, or which
    keeps its values in memory once the disk has no room for them."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        self.in_memory = False
        if not read_mode:
            try:
                reserve_file(filename)
            except OSError as error:
                self._start_in_memory(filename, error)
                return
        super().__init__(filename, read_mode)

    def _init_value(self, key: str) -> None:
        needed = grown_capacity(self._capacity, self._used + entry_size(key))
        if needed > self._capacity and not self.in_memory:
            try:
                os.posix_fallocate(self._f.fileno(), 0, needed)
            except OSError as error:
                self._move_to_memory(error)
        if needed > self._capacity and self.in_memory:
            self._grow_in_memory(needed)
        super()._init_value(key)

    def _start_in_memory(self, filename: str, error: OSError) -> None:
        self._f = None  # type: ignore[assignment]  # MmapedDict.close skips a dict without a file
        self._fname = filename
        self._capacity = INITIAL_SIZE
        self._m = mmap.mmap(-1, INITIAL_SIZE)
        self._positions: dict[str, int] = {}
        self._used = 8
        mmap_dict._pack_integer(self._m, 0, self._used)
        self._into_memory(error)

    def _move_to_memory(self, error: OSError) -> None:
        """Copy the values into anonymous memory and let go of the file (it keeps what it has)."""
        memory = mmap.mmap(-1, self._capacity)
        memory[: self._used] = self._m[: self._used]
        self._m.close()
        self._f.close()
        self._m, self._f = memory, None  # type: ignore[assignment]
        self._into_memory(error)

    def _grow_in_memory(self, capacity: int) -> None:
        memory = mmap.mmap(-1, capacity)
        memory[: self._used] = self._m[: self._used]
        self._m.close()
        self._m, self._capacity = memory, capacity

    def _into_memory(self, error: OSError) -> None:
        self.in_memory = True
        folder = os.path.dirname(self._fname)
        notice(
            f"[conduit worker {os.getpid()}] metrics: cannot write {folder} ({error.strerror or error}); "
            "this worker serves on, and its counts from now on are not in /metrics"
        )


def entry_size(key: str) -> int:
    """The bytes prometheus_client appends for a new key (length, padded key, value, timestamp)."""
    encoded = len(key.encode("utf-8"))
    return 4 + encoded + (8 - (encoded + 4) % 8) + 16


def grown_capacity(capacity: int, needed: int) -> int:
    """The capacity prometheus_client grows to (doubling) to hold `needed` bytes."""
    while needed > capacity:
        capacity *= 2
    return capacity


def reserve_file(path: str) -> None:
    """Allocate the blocks of this process's file before prometheus_client maps it. A new file
    is made whole under a temporary name (the /metrics collector reads only `*.db` files, and an
    empty one would fail it), then renamed into place."""
    if os.path.exists(path):
        with open(path, "rb+") as existing:
            os.posix_fallocate(existing.fileno(), 0, max(os.fstat(existing.fileno()).st_size, INITIAL_SIZE))
        return
    staging = f"{path}.{os.getpid()}.new"
    descriptor = os.open(staging, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.posix_fallocate(descriptor, 0, INITIAL_SIZE)
        os.rename(staging, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise
    finally:
        os.close(descriptor)


def notice(message: str) -> None:
    """Say `message` in the log once per process; kept until the log can be written."""
    global untold
    if not _told and untold is None:
        untold = message
        tell()


def tell() -> None:
    """Write the pending notice to stderr (the revision's log), unbuffered, so that a failed
    attempt leaves nothing behind to be written twice."""
    global untold, _told
    if untold is None:
        return
    try:
        os.write(2, f"{untold}\n".encode())
    except OSError:
        return
    untold, _told = None, True
