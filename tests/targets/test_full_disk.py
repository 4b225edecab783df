"""A full disk under CONDUIT_HOME (issue 16, item 4), on a real 64 MiB tmpfs filled to the last
byte: the endpoint keeps answering through the gateway (also from replicas restarted on the full
disk, whose workers used to die at their first metric), a replica's /readyz answers, `status`
says what is so (serving, degraded), a redeploy that fails for want of space says the old
revision keeps serving, and each worker's log says once that its metrics are not written. Needs
root (to mount the tmpfs); skipped elsewhere."""
from __future__ import annotations

import contextlib
import errno
import re
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

pytest.importorskip("sklearn")  # every test here serves a real sklearn model

from conduit.store import Store
from conduit.targets import local
from conftest import TEST_KEY, alive, constant_project, replicas_of, serving_home, wait_for
from mounts import small_filesystem

pytestmark = pytest.mark.e2e
NAME = "full-disk"
FILLER = "filler"
NOTICE = "metrics: cannot write"


def write_project(folder: Path, answer: int) -> Path:
    """One replica kept warm, so that the tests find the replica they crash."""
    manifest = constant_project(folder, NAME, answer)
    manifest.write_text(manifest.read_text() + "min_replicas: 1\n")
    return manifest


def fill(home: Path) -> None:
    """Write a filler file until the filesystem refuses another byte, and blank lines to each log
    until its last page is full too (a page partly used still takes a short line)."""
    write_until_refused(home / FILLER, b"\0")
    for log in (home / "logs").glob("*.log"):
        write_until_refused(log, b"\n")
    with pytest.raises(OSError) as refused, open(home / "one-more", "wb", buffering=0) as probe:
        probe.write(b"\0" * 4096)
    assert refused.value.errno == errno.ENOSPC


def write_until_refused(path: Path, byte: bytes) -> None:
    with open(path, "ab", buffering=0) as handle:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(byte * size)


def conduit(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a process of its own: a build in this process would leave BentoML holding paths
    under this home, which is unmounted at the end (later tests' builds failed on them)."""
    return subprocess.run([sys.executable, "-m", "conduit.cli.main", *args], capture_output=True, text=True, check=False)


def ask(points=((0.5, 1.5),), key: str = TEST_KEY) -> httpx.Response:
    endpoint = local.status(NAME).endpoint
    return httpx.post(endpoint, json=[list(p) for p in points], headers={"Authorization": key}, timeout=60)


def ready_replica(other_than: int | None = None) -> dict:
    """The serving revision's ready replica (not the one whose pid is `other_than`)."""
    serving = Store().serving(NAME).revision
    return wait_for(lambda: next((r for r in replicas_of(NAME, serving) if r["state"] == "ready" and r["pid"] != other_than), None))


def backend(path: str) -> int:
    """A GET straight to the ready replica (the gateway answers /readyz itself)."""
    return httpx.get(f"http://127.0.0.1:{ready_replica()['port']}{path}", timeout=30).status_code


def metric_writers() -> list[psutil.Process]:
    """The serving revision's workers: the processes holding its Prometheus files open."""
    folder = local.metrics_dir(Store(), NAME, Store().serving(NAME).revision)
    return [process for process in psutil.process_iter() if holds_files_under(process, folder)]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """Revision 1 of NAME served from a CONDUIT_HOME on a small tmpfs, which is then filled."""
    root = tmp_path_factory.mktemp("full-disk")
    with small_filesystem(root / "home", "64m") as home, serving_home(home):
        try:
            assert conduit("apply", str(write_project(root / "project", 1))).returncode == 0
            assert ask().json()["result"] == [1]
            fill(home)
            yield root
        finally:
            (home / FILLER).unlink(missing_ok=True)  # however the tests went, before stopping it all


def test_requests_keep_being_answered_on_a_full_disk(full):
    # Each status, and each first path, adds a metric key: a write into a page the disk cannot back.
    assert ask().status_code == 200
    assert ask(key="wrong-key-0123456789abcdef").status_code == 401
    assert ask(points=((1, 2, 3),)).status_code == 422
    assert httpx.post(local.status(NAME).endpoint, content=b"[[1,", headers={"Authorization": TEST_KEY}).status_code == 400
    assert [backend(path) for path in ("/readyz", "/healthz", "/metrics", "/no-such-page")] == [200, 200, 200, 404]


def test_workers_restarted_on_the_full_disk_serve(full):
    before = ready_replica()
    killed = metric_writers()
    assert killed
    for worker in killed:
        worker.kill()
    psutil.wait_procs(killed, timeout=30)
    # Its leader stops the replica and the gateway starts another; on the full disk its workers
    # used to die at their first metric.
    ready_replica(other_than=before["pid"])
    assert ask().json()["result"] == [1] and ask(points=((1, 2, 3),)).status_code == 422
    assert backend("/readyz") == 200


def test_the_gateway_restarts_a_crashed_replica_on_the_full_disk(full):
    crashed = ready_replica()
    psutil.Process(crashed["pid"]).kill()  # the gateway restarts it, saying so in a log it cannot write
    ready_replica(other_than=crashed["pid"])
    assert not alive(crashed["pid"])
    assert ask().json()["result"] == [1]
    assert local.status(NAME).view["counters"]["restarts"] >= 1


def test_status_says_serving_degraded(full):
    status = local.status(NAME)
    assert re.fullmatch(
        rf"serving \(degraded: the disk holding {re.escape(str(full / 'home'))} is full \(\d+ KiB free\): "
        r"logs and metrics are not written\)",
        status.state,
    ), status.state
    assert status.serves and status.degraded in status.state
    shown = conduit("status", NAME)
    assert shown.returncode == 0 and "serving (degraded: " in shown.stdout


def test_a_redeploy_without_space_says_the_old_revision_keeps_serving_when_it_does(full):
    failed = conduit("apply", str(write_project(full / "project", 2)))
    assert failed.returncode == 1
    assert f"error: build of {NAME} failed; revision 1 keeps serving: " in failed.stderr
    assert ask().json()["result"] == [1]


def test_each_worker_says_once_that_its_metrics_are_not_written(full):
    (full / "home" / FILLER).unlink()
    for _ in range(20):  # a notice the full log refused is written by that worker's next request
        assert ask().status_code == 200
    log = Path(Store().serving(NAME).log_path).read_text()
    notices = [line for line in log.splitlines() if NOTICE in line]
    assert notices, log[-3000:]
    assert len({line.split("]")[0] for line in notices}) == len(notices)  # once per worker
    assert local.status(NAME).state == "serving"


def test_delete_on_the_freed_disk_stops_every_worker(full):
    local.delete(NAME, progress=lambda _: None)
    assert not [p.pid for p in psutil.process_iter() if holds_files_under(p, full / "home")]


def holds_files_under(process: psutil.Process, folder: Path) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(f.path.startswith(str(folder)) for f in process.open_files())
    return False

