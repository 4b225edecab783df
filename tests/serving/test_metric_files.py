"""prometheus_client's multiprocess files on a full disk (`conduit.serving.metric_files`): a
process that writes metrics there keeps running (it used to die of SIGBUS), says so once, and
what /metrics reads stays readable. Each case runs in a process of its own on a real, filled
1 MiB tmpfs; needs root to mount it (skipped elsewhere)."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mounts import small_filesystem

pytest.importorskip("prometheus_client")

NOTICE = "metrics: cannot write"
# Enough label values to outgrow a file's first 64 KiB several times.
MANY = 3000


@pytest.fixture
def folder(tmp_path: Path):
    """A 1 MiB tmpfs for PROMETHEUS_MULTIPROC_DIR."""
    with small_filesystem(tmp_path / "metrics", "1m") as mounted:
        yield mounted


def run(folder: Path, body: str, install: bool = True) -> subprocess.CompletedProcess:
    """`body` in a fresh interpreter in multiprocess mode, with `fill()` (fill the disk) and
    `counter` (a labelled Counter) at hand."""
    script = textwrap.dedent(
        """
        import contextlib, os
        from conduit.serving import metric_files
        if INSTALL:
            metric_files.install()
        from prometheus_client import CollectorRegistry, Counter, generate_latest, multiprocess

        def fill():
            with open(os.path.join(FOLDER, "filler"), "ab", buffering=0) as filler:
                for size in (1 << 16, 4096, 1):
                    with contextlib.suppress(OSError):
                        while True:
                            filler.write(b"\\0" * size)

        def scrape():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry).decode()

        counter = Counter("answered", "requests", ["status"])
        """
    ).replace("INSTALL", repr(install)).replace("FOLDER", repr(str(folder)))
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", script + textwrap.dedent(body)], capture_output=True, text=True, env=env, check=False)


def test_without_it_a_full_disk_kills_the_process_at_its_first_metric(folder):
    done = run(folder, "fill()\ncounter.labels('200').inc()\n", install=False)
    assert done.returncode == -signal.SIGBUS  # what took a serving worker down


def test_a_process_started_on_a_full_disk_counts_in_memory_and_says_so_once(folder):
    done = run(
        folder,
        f"""
        fill()
        for status in range({MANY}):
            counter.labels(str(status)).inc()
        assert counter.labels('7')._value.get() == 1
        print(scrape().count('answered_total'))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"  # its counts are not in /metrics, and /metrics still answers
    assert done.stderr.count(NOTICE) == 1, done.stderr
    assert sorted(path.name for path in folder.iterdir()) == ["filler"]  # no empty file to trip the collector


def test_a_file_that_must_grow_on_a_full_disk_keeps_what_it_wrote(folder):
    done = run(
        folder,
        f"""
        counter.labels('first').inc()
        fill()
        for status in range({MANY}):
            counter.labels(str(status)).inc()
        counter.labels('first').inc()
        print([line for line in scrape().splitlines() if 'first' in line and not line.startswith('#')])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "answered_total{status=\"first\"} 1.0" in done.stdout  # as written before the disk filled
    assert done.stderr.count(NOTICE) == 1, done.stderr
