"""Replicas (conduit.targets.local.replicas): real Bentos served by real processes on 127.0.0.1,
started warm (forked from a zygote) and cold, watched, stopped, adopted, and held to a memory limit.

Every test runs its own event loop on uvloop (the gateway's loop), and kills whatever it started."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ruamel.yaml import YAML

pytest.importorskip("sklearn")
pytest.importorskip("bentoml")
uvloop = pytest.importorskip("uvloop")

from conduit.serving.auth import key_sha256
from conduit.targets.local import cgroup
from conduit.targets.local.bentoml_serving import METRICS_DIR_ENV, serve_command, serve_env
from conduit.targets.local.replicas import WARM_START_ENV, Launcher, ReplicaSpec, Started, answers_ready
from targets.conftest import constant_project

KEY = "replica-test-key-0123456789"
ANSWER = 7
READY_BOUND_S = 120.0  # a bound, not a timing assertion: a busy machine starts slowly
GROW_HOOK = '''
def grow(data):
    """["grow"] makes this worker take 400 MB, touched, before the model runs."""
    if data == ["grow"]:
        held = b"\\x01" * (400 << 20)
        return [[len(held), 0]]
    return data
'''


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """CONDUIT_HOME for this module, with one built Bento whose model answers ANSWER, and a
    pre hook that can make a worker grow by 400 MB."""
    from conduit.build import build
    from conduit.manifest import load

    home = tmp_path_factory.mktemp("replicas-home")
    saved = os.environ.get("CONDUIT_HOME")
    os.environ["CONDUIT_HOME"] = str(home)
    try:
        manifest = constant_project(home / "project", "replica-test", ANSWER)
        (manifest.parent / "hooks.py").write_text(GROW_HOOK, encoding="utf-8")
        document = YAML().load(manifest)
        document["flow"][0]["pre"] = "hooks.py:grow"
        YAML().dump(document, manifest)
        tag = build(load(manifest), progress=lambda _: None).tag
        yield home, tag
    finally:
        if saved is None:
            os.environ.pop("CONDUIT_HOME", None)
        else:
            os.environ["CONDUIT_HOME"] = saved


def spec_of(home, replica: int = 1, memory_bytes: int | None = None, revision: int = 1) -> ReplicaSpec:
    folder, tag = home
    return ReplicaSpec(
        name="replica-test", revision=revision, replica=replica, tag=tag, python=sys.executable,
        env={"CONDUIT_API_KEY_SHA256": key_sha256(KEY), METRICS_DIR_ENV: str(folder / "metrics" / f"r{revision}")},
        log_path=folder / "logs" / f"replica-test-r{revision}-{replica}.log", memory_bytes=memory_bytes,
    )


def run(coroutine):
    """Run `coroutine` on uvloop, as the gateway does."""
    return uvloop.run(coroutine)


@contextlib.asynccontextmanager
async def launched(lines: list[str] | None = None):
    """A Launcher whose replicas are all killed at the end, whatever happened."""
    launcher = Launcher((lines if lines is not None else []).append)
    try:
        yield launcher
    finally:
        for pid in launcher.ended:  # every replica it started or adopted
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        await launcher.close()


async def until_ready(started: Started) -> float:
    """Seconds from now until the replica answers /readyz (fails after READY_BOUND_S)."""
    begun = time.perf_counter()
    while not await answers_ready(started.port):
        assert time.perf_counter() - begun < READY_BOUND_S, "the replica never became ready"
        await asyncio.sleep(0.02)
    return time.perf_counter() - begun


def predict(port: int, body: bytes = b"[[1, 2], [3, 4]]", key: str = KEY) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=body, headers={"Authorization": key, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        return response.read().decode()


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    members.append(int(entry.name))
    return members


def test_a_warm_replica_serves_with_the_key_and_stop_ends_its_whole_group(home):
    async def scenario():
        async with launched() as launcher:
            spec = spec_of(home)
            await launcher.prepare(spec)
            started = await launcher.start(spec)
            await until_ready(started)
            assert started.warm
            status, body = await asyncio.to_thread(predict, started.port)
            assert (status, body["result"]) == (200, [ANSWER, ANSWER])
            assert (await asyncio.to_thread(predict, started.port, key="wrong"))[0] == 401
            metrics = await asyncio.to_thread(get, started.port, "/metrics")
            assert 'conduit_predict_requests_total{status="200"}' in metrics
            members = group_members(started.pid)
            assert started.pid in members and len(members) >= 2  # the leader and its worker
            await launcher.stop(started)
            assert group_members(started.pid) == []
            assert await launcher.wait_exit(started) == "exited with code 0"

    run(scenario())


def test_a_cold_replica_serves_the_same_answer(home, monkeypatch):
    monkeypatch.setenv(WARM_START_ENV, "0")

    async def scenario():
        lines: list[str] = []
        async with launched(lines) as launcher:
            started = await launcher.start(spec_of(home))
            await until_ready(started)
            status, body = await asyncio.to_thread(predict, started.port)
            assert (started.warm, status, body["result"]) == (False, 200, [ANSWER, ANSWER])
            await launcher.stop(started)
            assert group_members(started.pid) == []
        assert lines == [f"replica-test-r1-1 starts cold: {WARM_START_ENV}=0"]

    run(scenario())


def test_a_zygote_not_safe_to_fork_leaves_the_replica_cold_and_says_why(home, monkeypatch):
    from conduit.targets.local import bentoml_serving

    # json is imported by every zygote: as if it read the environment at import, forking is refused.
    monkeypatch.setattr(bentoml_serving, "IMPORT_TIME_ENV_READERS", ("json",))

    async def scenario():
        lines: list[str] = []
        async with launched(lines) as launcher:
            started = await launcher.start(spec_of(home))
            await until_ready(started)
            assert not started.warm
            assert (await asyncio.to_thread(predict, started.port))[0] == 200
            # The zygote that can fork nothing is let go (its imports' memory with it), and not started again.
            (zygote,) = [await spawning for spawning in launcher.zygotes.values()]
            await asyncio.wait_for(zygote.process.wait(), 30)
            again = await launcher.start(spec_of(home))
            assert not again.warm
            await launcher.stop(again)
            await launcher.stop(started)
        assert "replica-test-r1-1 starts cold: json was imported before a replica's environment was known" in lines
        assert sum(line.startswith("starting a zygote") for line in lines) == 1

    run(scenario())


def test_wait_exit_reports_a_kill_9_of_the_replica_and_its_workers_go_too(home):
    async def scenario():
        async with launched() as launcher:
            started = await launcher.start(spec_of(home))
            await until_ready(started)
            workers = [pid for pid in group_members(started.pid) if pid != started.pid]
            os.kill(started.pid, signal.SIGKILL)
            assert await asyncio.wait_for(launcher.wait_exit(started), 30) == "killed by signal 9 (SIGKILL)"
            for _ in range(100):
                if not any(pid in group_members(started.pid) for pid in workers):
                    break
                await asyncio.sleep(0.05)
            assert group_members(started.pid) == []

    run(scenario())


def test_a_new_launcher_adopts_a_running_replica_and_refuses_a_stranger(home):
    async def first_gateway() -> Started:
        launcher = Launcher(lambda _line: None)
        started = await launcher.start(spec_of(home))
        await until_ready(started)
        await launcher.close()  # the gateway goes; its replica keeps serving
        return started

    async def second_gateway(started: Started) -> None:
        async with launched() as launcher:
            assert await answers_ready(started.port)
            assert launcher.adopt(started.pid, started.port, started.create_time + 5) is None  # a recycled pid
            assert launcher.adopt(os.getpid(), started.port, 0.0) is None  # not a replica
            adopted = launcher.adopt(started.pid, started.port, started.create_time)
            assert adopted == started
            await launcher.stop(adopted)
            assert await launcher.wait_exit(adopted) == "exited"  # not its child: the code is not known
            assert group_members(started.pid) == []

    started = run(first_gateway())
    try:
        run(second_gateway(started))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.pid, signal.SIGKILL)


def test_a_replica_whose_model_fails_to_load_exits_with_its_code_and_its_log_says_why(home):
    from conduit.build import build
    from conduit.manifest import load
    from conduit.targets.local.bentoml_serving import bento_folder

    folder, _tag = home
    tag = build(load(constant_project(folder / "broken", "replica-broken", 3)), progress=lambda _: None).tag
    (bento_folder(tag) / "src" / "artifacts" / "model.pkl").write_bytes(b"not a pickle")
    spec = dataclasses.replace(spec_of(home), name="replica-broken", tag=tag, log_path=folder / "logs" / "broken.log")

    async def scenario():
        async with launched() as launcher:
            started = await launcher.start(spec)
            reason = await asyncio.wait_for(launcher.wait_exit(started), READY_BOUND_S)
            assert reason == "exited with code 3"  # uvicorn's code for a start-up that failed
            assert group_members(started.pid) == []

    run(scenario())
    log = spec.log_path.read_text()
    assert "model.pkl" in log and "stopping the replica" in log


def test_two_replicas_of_one_revision_serve_at_once_and_count_their_metrics_together(home):
    async def scenario():
        async with launched() as launcher:
            first, second = await asyncio.gather(launcher.start(spec_of(home, 1, revision=2)), launcher.start(spec_of(home, 2, revision=2)))
            await asyncio.gather(until_ready(first), until_ready(second))
            assert first.port != second.port and first.pid != second.pid
            for replica in (first, second):
                assert (await asyncio.to_thread(predict, replica.port))[1]["result"] == [ANSWER, ANSWER]
            metrics = await asyncio.to_thread(get, first.port, "/metrics")  # one folder per revision: both counted
            assert 'conduit_predict_requests_total{status="200"} 2.0' in metrics
            await asyncio.gather(launcher.stop(first), launcher.stop(second))
            assert group_members(first.pid) == group_members(second.pid) == []

    run(scenario())


@pytest.mark.skipif(cgroup.why_unavailable() is not None, reason=f"memory limits not enforced here: {cgroup.why_unavailable()}")
def test_a_replica_runs_in_a_memory_cgroup_with_its_limit_which_goes_with_it(home):
    async def scenario():
        async with launched() as launcher:
            started = await launcher.start(spec_of(home, memory_bytes=2 << 30))
            await until_ready(started)
            group = cgroup.MemoryGroup.of_process(started.pid)
            assert group is not None and group.limit_bytes == 2 << 30  # a whole number of pages: kept as asked
            assert set(group_members(started.pid)) <= set(group.pids())
            await launcher.stop(started)
            assert not group.path.exists()

    run(scenario())


@pytest.mark.skipif(cgroup.why_unavailable() is not None, reason=f"memory limits not enforced here: {cgroup.why_unavailable()}")
def test_a_replica_over_its_memory_limit_is_reported_killed_for_it(home):
    async def scenario():
        async with launched() as launcher:
            started = await launcher.start(spec_of(home, memory_bytes=300_000_000))
            await until_ready(started)
            with contextlib.suppress(OSError):  # the worker dies under the request
                await asyncio.to_thread(predict, started.port, b'{"data": ["grow"]}')
            reason = await asyncio.wait_for(launcher.wait_exit(started), 60)
            assert reason == "killed: over its memory limit of 0.3 GB"

    run(scenario())


def test_answers_ready_is_false_where_nothing_listens():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert run(answers_ready(port)) is False


def test_start_to_ready_of_iris_warm_cold_and_bare_bentoml_serve(tmp_path, monkeypatch, capsys):
    """Measured and printed, not asserted: start -> /readyz for the iris example, warm (the
    zygote already preloaded, as while its revision serves), cold, and a bare `bentoml serve`."""
    import psutil

    from conduit.build import build
    from conduit.manifest import load
    from conduit.targets.local.processes import answers_ready, free_port, kill_tree
    from targets.conftest import trained_example

    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    tag = build(load(trained_example("iris", tmp_path) / "conduit.yaml"), progress=lambda _: None).tag
    iris = (tmp_path / "home", tag)
    timings = {"warm": run(start_to_ready(spec_of(iris), warm=True)), "cold": run(start_to_ready(spec_of(iris), warm=False))}
    port = free_port()
    begun = time.perf_counter()
    bare = subprocess.Popen(serve_command(tag, port), env=serve_env(key_sha256(KEY)), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not answers_ready(f"http://127.0.0.1:{port}/readyz"):
            assert time.perf_counter() - begun < READY_BOUND_S and bare.poll() is None
            time.sleep(0.02)
        timings["bentoml serve"] = time.perf_counter() - begun
    finally:
        psutil.wait_procs(kill_tree(bare.pid), timeout=30)  # its workers run in sessions of their own
        bare.wait()
    with capsys.disabled():
        print("\niris start -> ready: " + ", ".join(f"{kind} {seconds:.2f} s" for kind, seconds in timings.items()))


async def start_to_ready(spec: ReplicaSpec, warm: bool) -> float:
    os.environ[WARM_START_ENV] = "1" if warm else "0"
    try:
        async with launched() as launcher:
            if warm:
                await launcher.prepare(spec)
            begun = time.perf_counter()
            started = await launcher.start(spec)
            seconds = time.perf_counter() - begun + await until_ready(started)
            assert started.warm is warm
            await launcher.stop(started)
            return seconds
    finally:
        os.environ.pop(WARM_START_ENV)
