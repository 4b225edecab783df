"""The gateway: every local deployment behind one port, served like a serverless platform.

`python -m conduit.targets.local.gateway --fd N` runs under the keeper (`keeper.py`), which holds
the listening socket on 127.0.0.1 (default port 8765, `CONDUIT_PORT`) and restarts the gateway if it
dies. It is the only owner of replicas (`replicas.py`: a replica is one process group serving a
revision's built Bento with BentoML's worker) and does what Knative's activator and autoscaler do:

- Routes each request, not each connection (`proxy.py`): `/v1/<project>/<name>/predict` goes to the
  ready replica of the serving revision with the fewest requests in flight, so a keep-alive client
  moves to a new revision at a request boundary. The key is checked here first, so nobody without
  it can wake a deployment or queue behind one (a request without it goes on to a replica only
  when one is ready: it answers the same 401 and records it in the prediction log).
- Starts revisions: the CLI records a revision `starting` in the store; the gateway starts its first
  replica and, once it answers /readyz, promotes it (`Store.promote`, one transaction) and drains
  the one it replaces: no new requests, the ones in flight finish, then its replicas stop. A
  revision whose replica exits or does not get ready in time is recorded `failed` with why.
- Scales (`autoscaler.py`): out when requests in flight per replica exceed `replica_concurrency`, up
  to `max_replicas`; in after `cooldown` seconds of less load; to zero when `min_replicas` is 0. A
  request arriving at zero is held while a replica starts (at most `MAX_HELD` per deployment and
  `CONDUIT_HOLD_TIMEOUT` seconds, then 503 with Retry-After in the contract's error shape).
- Restarts a replica that crashes, backing off 1, 2, 4, 8, 16 then 30 s between attempts (reset once
  one has served for a minute).
- Tells: `$CONDUIT_HOME/run/gateway/state.json` (private) holds every replica and each deployment's
  state, replicas ready/desired, queue and last request time: `conduit status` reads it, and a
  restarted gateway adopts the replicas it lists instead of starting them again. Per deployment,
  `GET /v1/<project>/<name>/metrics` gives the gateway's counters for it (replicas, queue, cold
  starts, held-request wait) followed by a ready replica's own metrics.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from conduit.errors import Unauthorized
from conduit.paths import conduit_home, keep_private
from conduit.store import InvalidTransition, Store
from conduit.targets.local import processes, proxy, telling
from conduit.targets.local.replicas import Launcher, ReplicaSpec, Started, answers_ready
from conduit.targets.local.runtime import Front, Replica, RevisionRuntime
from conduit.targets.local.telling import read_state

HOLD_TIMEOUT_ENV = "CONDUIT_HOLD_TIMEOUT"
DEFAULT_HOLD_TIMEOUT_S = 60.0
MAX_HELD = 1000  # requests held per deployment while it has no ready replica; more get 503
TICK_S = 0.1
STATE_WRITE_S = 0.25  # at most this often: under load every request changes it
SYNC_S = 0.25  # how often the store is read for new, promoted, failed or deleted revisions
BACKOFF_S = (1, 2, 4, 8, 16, 30)
STABLE_S = 60.0  # a replica ready this long resets its revision's restart backoff
READY_POLL_S = 0.02
STOP_GRACE_S = 10.0


def say(line: str) -> None:
    try:
        print(f"[conduit gateway] {line}", flush=True)
    except OSError:  # a full disk under the log: serving goes on without it
        pass


class Gateway:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.store = Store(home)
        self.launcher = Launcher(say)
        self.fronts: dict[str, Front] = {}
        self.runtimes: dict[tuple[str, int], RevisionRuntime] = {}
        self.retired: list[RevisionRuntime] = []
        self.hold_timeout = float(os.environ.get(HOLD_TIMEOUT_ENV) or DEFAULT_HOLD_TIMEOUT_S)
        self.port = 0
        self.dirty = True
        self.last_sync = 0.0
        self.last_write = 0.0
        self.state_unwritable = False

    # --- the loop -------------------------------------------------------------------------------

    async def run(self, listener: socket.socket) -> None:
        self.port = listener.getsockname()[1]
        self.sync()
        await self.adopt(read_state(self.home))
        say(f"pid {os.getpid()} serving on 127.0.0.1:{self.port}")
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
        server = asyncio.ensure_future(proxy.serve(listener, self.handle, proxy.Limits()))
        while not server.done() and not stopping.is_set():
            self.tick_safely()
            await asyncio.sleep(TICK_S)
        server.cancel()
        if stopping.is_set():  # asked to stop: nothing of it outlives it
            await self.stop_every_replica()
        # Else the proxy failed: exit and let the keeper start a gateway that adopts the replicas.
        await self.launcher.close()

    def tick_safely(self) -> None:
        """A bug in one tick is logged, not fatal: the replicas serve on and the next tick retries."""
        try:
            self.tick()
        except Exception:  # noqa: BLE001 - whatever it was, stopping every deployment would be worse
            say(f"a control step failed, retrying:\n{traceback.format_exc()}")

    async def stop_every_replica(self) -> None:
        """A deliberate stop (SIGTERM from the keeper): nothing of it outlives it. (Killed outright,
        it cannot: its replicas keep serving and the next gateway adopts them.)"""
        started = [
            replica.started
            for runtime in [*self.runtimes.values(), *self.retired]
            for replica in runtime.replicas.values()
            if replica.started is not None
        ]
        for runtime in [*self.runtimes.values(), *self.retired]:
            for replica in runtime.replicas.values():
                replica.stopping = True
        await asyncio.gather(*(self.launcher.stop(one, STOP_GRACE_S) for one in started), return_exceptions=True)
        self.runtimes.clear()
        self.retired.clear()
        self.fronts.clear()
        self.write_state()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.last_sync >= SYNC_S:
            self.sync()
            self.last_sync = now
        for runtime in [*self.runtimes.values(), *self.retired]:
            self.scale(runtime, now)
        for runtime in [r for r in self.retired if not r.replicas]:
            self.launcher.release(runtime.name, runtime.number)  # its zygote stops unless another revision uses it
        self.retired = [r for r in self.retired if r.replicas]
        if self.dirty and now - self.last_write >= STATE_WRITE_S:
            self.write_state()

    def sync(self) -> None:
        """Bring the gateway in line with the store: new revisions start, revisions archived,
        failed or deleted by a command retire."""
        now = time.monotonic()
        live = {(r.name, r.revision): r for r in self.store.live_revisions()}
        for key, runtime in list(self.runtimes.items()):
            record = live.get(key)
            if record is None:
                self.retire(runtime)
            elif record.state == "serving" and not runtime.promoted:
                self.promoted(runtime)
        for key, record in live.items():
            if key not in self.runtimes:
                self.add(RevisionRuntime(record, now))
        for name in [n for n, front in self.fronts.items() if front.runtime() is None]:
            self.fronts.pop(name).wake()

    def add(self, runtime: RevisionRuntime) -> None:
        self.runtimes[(runtime.name, runtime.number)] = runtime
        front = self.fronts.setdefault(runtime.name, Front(runtime.name))
        if runtime.promoted:
            self.promoted(runtime)
        else:
            front.starting[runtime.number] = runtime
            say(f"{runtime.name} revision {runtime.number}: starting ({runtime.record.tag})")
        self.dirty = True

    def promoted(self, runtime: RevisionRuntime) -> None:
        front = self.fronts.setdefault(runtime.name, Front(runtime.name))
        front.starting.pop(runtime.number, None)
        replaced, front.serving = front.serving, runtime
        runtime.promoted = True
        # Counted from now, not from when it was recorded: a slow first start must not leave it a
        # cooldown shorter than its start took.
        runtime.autoscaler.observe(time.monotonic(), len(runtime.live()) * runtime.settings.replica_concurrency)
        if replaced is not None and replaced is not runtime:
            self.retire(replaced)
        # Its zygote imports now, so that a scale from zero (or after a gateway restart) forks.
        asyncio.ensure_future(self.launcher.prepare(self.spec(runtime, Replica(0))))
        front.wake()
        self.dirty = True

    def retire(self, runtime: RevisionRuntime) -> None:
        """No more requests; its replicas stop once their requests in flight are answered."""
        if runtime.retiring:
            return
        self.runtimes.pop((runtime.name, runtime.number), None)
        front = self.fronts.get(runtime.name)
        if front is not None:
            front.starting.pop(runtime.number, None)
            if front.serving is runtime:
                front.serving = None
            front.wake()
        runtime.retiring = True
        for replica in runtime.replicas.values():
            if replica.state != "stopping":
                replica.state = "draining"
        self.retired.append(runtime)
        self.dirty = True

    # --- scaling --------------------------------------------------------------------------------

    def scale(self, runtime: RevisionRuntime, now: float) -> None:
        if runtime.retiring:
            self.stop_drained(runtime)
            return
        if not runtime.promoted:
            self.start_revision(runtime, now)
            return
        runtime.autoscaler.observe(now, runtime.demand())
        desired = runtime.autoscaler.desired(now)
        live = runtime.live()
        if len(live) < desired and now >= runtime.next_start_at:
            for _ in range(desired - len(live)):
                self.launch(runtime, f"{desired} wanted for {runtime.demand()} in flight, {len(live)} running")
        elif len(live) > desired:
            surplus = sorted(live, key=lambda r: (r.state == "ready", r.in_flight, -r.number))
            for replica in surplus[: len(live) - desired]:
                replica.state = "draining"
                self.dirty = True
                say(f"{runtime.name} revision {runtime.number}: replica {replica.number} drains "
                    f"({'scaled to zero' if desired == 0 else f'scaled in to {desired}'} after {runtime.settings.cooldown_s:g}s of less load)")
        self.stop_drained(runtime)
        if runtime.failures and any(r.ready_at and now - r.ready_at > STABLE_S for r in runtime.ready()):
            runtime.failures = 0
            runtime.last_failure = None
            self.dirty = True

    def start_revision(self, runtime: RevisionRuntime, now: float) -> None:
        """A revision not yet serving: its first replicas start; too long without ready fails it."""
        wanted = max(1, runtime.settings.min_replicas)
        for _ in range(wanted - len(runtime.replicas)):
            self.launch(runtime, "a new revision")
        if now - runtime.created > runtime.settings.ready_timeout_s:
            self.fail(runtime, f"not ready after {runtime.settings.ready_timeout_s:.0f}s")

    def stop_drained(self, runtime: RevisionRuntime) -> None:
        for replica in runtime.replicas.values():
            if replica.state == "draining" and replica.in_flight == 0 and not replica.stopping:
                self.stop(runtime, replica)

    def launch(self, runtime: RevisionRuntime, why: str) -> None:
        replica = Replica(next(runtime.numbers))
        runtime.replicas[replica.number] = replica
        cold = runtime.promoted and not runtime.ready()
        if cold:
            runtime.counters["cold_starts"] += 1
        say(f"{runtime.name} revision {runtime.number}: replica {replica.number} starts ({why}{'; a cold start' if cold else ''})")
        asyncio.ensure_future(self.run_replica(runtime, replica))
        self.dirty = True

    def stop(self, runtime: RevisionRuntime, replica: Replica) -> None:
        replica.stopping = True
        replica.state = "stopping"
        if replica.started is not None:
            proxy.close_pool(replica.started.port)
            asyncio.ensure_future(self.launcher.stop(replica.started, STOP_GRACE_S))
        self.dirty = True

    # --- one replica's life ---------------------------------------------------------------------

    def spec(self, runtime: RevisionRuntime, replica: Replica) -> ReplicaSpec:
        from conduit.targets.local import revision_env

        record = runtime.record
        return ReplicaSpec(
            name=record.name,
            revision=record.revision,
            replica=replica.number,
            tag=record.tag,
            python=runtime.settings.python,
            env=revision_env(self.store, record),
            log_path=Path(record.log_path or self.home / "logs" / f"{record.name}-r{record.revision}.log"),
            memory_bytes=runtime.settings.memory_bytes,
        )

    async def run_replica(self, runtime: RevisionRuntime, replica: Replica) -> None:
        try:
            started = await self.launcher.start(self.spec(runtime, replica))
        except Exception as error:  # noqa: BLE001 - whatever stopped it from starting is its failure
            self.replica_gone(runtime, replica, f"could not start: {type(error).__name__}: {error}")
            return
        await self.watch(runtime, replica, started)

    async def watch(self, runtime: RevisionRuntime, replica: Replica, started: Started) -> None:
        replica.started = started
        self.dirty = True
        exited = asyncio.ensure_future(self.launcher.wait_exit(started))
        late: Optional[str] = None
        if replica.state == "starting":
            if await self.becomes_ready(runtime, started, exited):
                self.replica_ready(runtime, replica)
            elif not exited.done() and replica.state == "starting" and not runtime.retiring:
                late = f"was not ready after {runtime.settings.ready_timeout_s:.0f}s"
                self.stop(runtime, replica)
        reason = await exited
        self.replica_gone(runtime, replica, late or reason, failed=late is not None)

    async def becomes_ready(self, runtime: RevisionRuntime, started: Started, exited: asyncio.Future) -> bool:
        deadline = time.monotonic() + runtime.settings.ready_timeout_s
        while not exited.done() and time.monotonic() < deadline and not runtime.retiring:
            if await answers_ready(started.port):
                return True
            await asyncio.sleep(READY_POLL_S)
        return False

    def replica_ready(self, runtime: RevisionRuntime, replica: Replica) -> None:
        replica.state = "ready" if not runtime.retiring else "draining"
        replica.ready_at = time.monotonic()
        say(f"{runtime.name} revision {runtime.number}: replica {replica.number} ready on port {replica.started.port}")  # type: ignore[union-attr]
        if not runtime.promoted and not runtime.retiring:
            asyncio.ensure_future(self.promote(runtime))
        front = self.fronts.get(runtime.name)
        if front is not None:
            front.wake()
        self.dirty = True

    async def promote(self, runtime: RevisionRuntime) -> None:
        try:
            await asyncio.to_thread(self.store.promote, runtime.name, runtime.number)
        except InvalidTransition as refused:  # a command failed it meanwhile (Ctrl-C of apply)
            say(f"{runtime.name} revision {runtime.number}: not promoted ({refused})")
            self.retire(runtime)
            return
        say(f"{runtime.name} revision {runtime.number}: serving")
        if not runtime.retiring:
            self.promoted(runtime)

    def replica_gone(self, runtime: RevisionRuntime, replica: Replica, reason: str, failed: bool = False) -> None:
        runtime.replicas.pop(replica.number, None)
        self.dirty = True
        if (replica.stopping and not failed) or runtime.retiring:
            return
        say(f"{runtime.name} revision {runtime.number}: replica {replica.number} {reason}")
        if not runtime.promoted:
            self.fail(runtime, reason)
            return
        runtime.failures += 1
        runtime.counters["restarts"] += 1
        delay = BACKOFF_S[min(runtime.failures, len(BACKOFF_S)) - 1]
        runtime.next_start_at = time.monotonic() + delay
        runtime.last_failure = f"replica {reason}; restarting in {delay}s (attempt {runtime.failures})"
        say(f"{runtime.name} revision {runtime.number}: restarting a replica in {delay}s")

    def fail(self, runtime: RevisionRuntime, reason: str) -> None:
        cause = processes.first_cause(runtime.record.log_path)
        note = f"{reason}: {cause}" if cause else reason
        say(f"{runtime.name} revision {runtime.number}: failed ({note})")
        self.retire(runtime)
        asyncio.ensure_future(asyncio.to_thread(self.store.fail_if_starting, runtime.name, runtime.number, note))

    # --- requests -------------------------------------------------------------------------------

    async def handle(self, request: proxy.Request) -> proxy.Forward | proxy.Answer:
        path, _, query = request.path.partition("?")
        if path in ("/healthz", "/readyz"):
            return proxy.Answer(200, b'{"status": "ok"}')
        parts = path.split("/", 4)
        if len(parts) < 4 or parts[1] != "v1":
            raise proxy.Reject(404, "not_found", f"no such path: {path}; deployments are at /v1/<project>/<name>/predict")
        project, name, rest = parts[2], parts[3], (parts[4] if len(parts) > 4 else "")
        front = self.fronts.get(name)
        runtime = front.runtime() if front is not None else None
        if front is None or runtime is None or runtime.settings.project != project:
            raise proxy.Reject(404, "not_found", f"no deployment {name!r} in project {project!r}")
        if rest in ("healthz", "readyz"):
            return proxy.Answer(200, json.dumps({"status": telling.deployment_state(front)}).encode())
        if rest == "metrics":
            return proxy.Answer(200, await self.metrics(runtime), "text/plain; version=0.0.4")
        if rest != "predict":
            # BentoML's /docs redirects to its Swagger page at "/", which is this deployment's root here.
            page = "" if rest == "docs" else rest
            return self.forward_if_ready(runtime, "/" + page + (f"?{query}" if query else ""))
        if request.method != "POST":
            raise proxy.Reject(405, "method_not_allowed", f"predict takes POST, not {request.method}")
        try:
            runtime.key_check.verify(request.header(b"authorization"))
        except Unauthorized as refused:
            if runtime.pick() is None:  # nothing may wake a deployment, or wait behind one, without the key
                raise proxy.Reject(401, "unauthorized", str(refused)) from None
            # A ready replica answers it (the same 401) and records it in the prediction log.
            return self.forward_if_ready(runtime, "/predict" + (f"?{query}" if query else ""))
        replica, runtime = await self.lease(front)
        return proxy.Forward(replica.started.port, "/predict" + (f"?{query}" if query else ""), self.release(runtime, replica))  # type: ignore[union-attr]

    def forward_if_ready(self, runtime: RevisionRuntime, path: str) -> proxy.Forward:
        """Docs and the rest go to a ready replica; they never wake a deployment up."""
        replica = runtime.pick()
        if replica is None:
            raise proxy.Reject(503, "unavailable", f"{runtime.name} has no ready replica (scaled to zero?): a predict request starts one", retry_after=2)
        replica.in_flight += 1
        return proxy.Forward(replica.started.port, path, self.release(runtime, replica))  # type: ignore[union-attr]

    async def lease(self, front: Front) -> tuple[Replica, RevisionRuntime]:
        """A ready replica for one request, holding it while one starts (scale from zero)."""
        deadline = time.monotonic() + self.hold_timeout
        held_on: Optional[RevisionRuntime] = None
        began = time.monotonic()
        try:
            while True:
                runtime = front.runtime()
                if runtime is None:
                    raise proxy.Reject(503, "unavailable", f"no revision of {front.name} is serving", retry_after=5)
                runtime.last_request_at = time.time()
                replica = runtime.pick()
                if replica is not None:
                    replica.in_flight += 1
                    runtime.counters["requests"] += 1
                    self.dirty = True
                    return replica, runtime
                held_on = self.hold(runtime, held_on)
                wakeup = front.wakeup
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(wakeup.wait(), left)
        except asyncio.TimeoutError:  # (not the builtin TimeoutError before Python 3.11)
            raise proxy.Reject(
                503, "unavailable", f"{front.name} got no ready replica within {self.hold_timeout:.0f}s; try again", retry_after=5
            ) from None
        finally:
            if held_on is not None:
                held_on.held -= 1
                held_on.counters["held"] += 1
                held_on.counters["held_wait_s"] += time.monotonic() - began
                self.dirty = True

    def hold(self, runtime: RevisionRuntime, held_on: Optional[RevisionRuntime]) -> RevisionRuntime:
        """Count this request as waiting on `runtime` (once) and let it scale up right away."""
        if held_on is runtime:
            return runtime
        if held_on is not None:
            held_on.held -= 1
        if runtime.held >= MAX_HELD:
            raise proxy.Reject(503, "overloaded", f"{runtime.name} has {MAX_HELD} requests waiting; try again", retry_after=1)
        runtime.held += 1
        self.scale(runtime, time.monotonic())
        self.dirty = True
        return runtime

    def release(self, runtime: RevisionRuntime, replica: Replica):
        def done(ok: bool) -> None:
            replica.in_flight -= 1
            if not ok and replica.state == "ready":
                replica.state = "suspect"  # not picked again until it answers /readyz
                asyncio.ensure_future(self.recheck(runtime, replica))
            if replica.state == "draining" and replica.in_flight == 0 and not replica.stopping:
                self.stop(runtime, replica)

        return done

    async def recheck(self, runtime: RevisionRuntime, replica: Replica) -> None:
        if replica.started is not None and await answers_ready(replica.started.port) and replica.state == "suspect":
            replica.state = "ready"
            front = self.fronts.get(runtime.name)
            if front is not None:
                front.wake()

    # --- what it tells ----------------------------------------------------------------------------

    def write_state(self) -> None:
        self.last_write = time.monotonic()
        try:
            telling.write_state(self.home, self.port, self.fronts, [*self.runtimes.values(), *self.retired])
        except OSError as error:  # a full disk: status is stale until there is room, serving goes on
            if not self.state_unwritable:
                say(f"cannot write {telling.state_file(self.home)} ({error.strerror}); will retry")
            self.state_unwritable = True
            return
        self.state_unwritable = False
        self.dirty = False

    async def metrics(self, runtime: RevisionRuntime) -> bytes:
        """The gateway's series, then a ready replica's own (never waking one up)."""
        text = telling.metrics_text(runtime, time.monotonic())
        replica = runtime.pick()
        if replica is not None and replica.started is not None:
            text += await telling.fetch_text(replica.started.port, "/metrics")
        return text.encode()

    # --- a restarted gateway ---------------------------------------------------------------------

    async def adopt(self, previous: dict[str, Any]) -> None:
        """Take over the replicas a previous gateway (killed) left running; stop the rest."""
        for row in previous.get("replicas", []):
            started = self.launcher.adopt(row["pid"], row["port"], row["create_time"])
            if started is None:
                continue
            runtime = self.runtimes.get((row["name"], row["revision"]))
            if runtime is None or row["state"] in ("draining", "stopping"):
                asyncio.ensure_future(self.launcher.stop(started, STOP_GRACE_S))
                continue
            replica = Replica(next(runtime.numbers), state="starting")
            runtime.replicas[replica.number] = replica
            # What ran before the restart was needed then: keep it for a cooldown, as if just scaled to.
            runtime.autoscaler.observe(time.monotonic(), len(runtime.replicas) * runtime.settings.replica_concurrency)
            asyncio.ensure_future(self.watch(runtime, replica, started))
            say(f"{runtime.name} revision {runtime.number}: adopted replica pid {row['pid']} on port {row['port']}")


def main(argv: list[str] | None = None) -> int:
    keep_private()
    parser = argparse.ArgumentParser(prog="conduit.targets.local.gateway")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket the keeper holds")
    args = parser.parse_args(argv)
    # Inherited from the keeper, so inheritable: a zygote spawned by uvloop would keep the port
    # open after the gateway died, and no new keeper could bind it.
    os.set_inheritable(args.fd, False)
    listener = socket.socket(fileno=args.fd)
    gateway = Gateway(conduit_home())
    try:
        import uvloop
    except ImportError:  # a conduit dependency; plain asyncio serves too, slower
        asyncio.run(gateway.run(listener))
    else:
        uvloop.run(gateway.run(listener))
    return 0


if __name__ == "__main__":
    sys.exit(main())
