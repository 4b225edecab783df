"""The local target: supervised `bentoml serve` on 127.0.0.1, with revisions and one stable URL.

Per deployment name there is one router (`targets/router.py`) on a port that never changes, and
one serving revision behind it: a supervisor (`targets/supervisor.py`) running `bentoml serve` on
a backend port. The store (`conduit.store`) records both; logs go to
`$CONDUIT_HOME/logs/<name>-r<revision>.log` (the router's to `<name>-router.log`).

Rolling out a revision (apply, rollback): start it on a fresh backend port, wait for `/readyz`,
point the router at it (new connections go there at once), then stop and archive the old one.
A revision that fails to build or to become ready is recorded as failed, its process stopped, and
the old revision keeps serving; the error says why and carries the tail of its log, and says
"revision N keeps serving" only after checking that it answers.

Interrupts: recording a revision with its process, the switch (router, `Store.promote`, stopping
the old one) and cleaning up a failed revision run with Ctrl-C held off (`targets/interrupts.py`),
so an interrupted apply or rollback ends with one revision serving, or none, and nothing left
`starting`. What a command killed outright left (SIGKILL cannot be held off) is finished by
`reconcile`, which apply, rollback and status run first (delete stops everything anyway).

Status is checked, not read: the serving revision's server must answer /readyz, and a full disk
under CONDUIT_HOME (no logs, no metrics) makes it `serving (degraded: ...)`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NoReturn, Optional

from conduit import keys
from conduit.errors import ConduitError, DeployError, UsageError
from conduit.paths import conduit_home
from conduit.serving import prediction_log
from conduit.serving.process import API_KEY_SHA256_ENV, METRICS_DIR_ENV, PLAIN_KEY_ENV, serve_command, serve_env
from conduit.store import DeploymentRecord, Revision, Store
from conduit.targets import interrupts, processes
from conduit.targets.processes import ROUTER_MODULE, SUPERVISOR_MODULE
from conduit.targets.standby import Standby

Progress = Callable[[str], None]
READY_TIMEOUT_ENV = "CONDUIT_READY_TIMEOUT"
DEFAULT_READY_TIMEOUT_S = 300.0  # a large Hugging Face model on a busy CPU loads slowly
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class Deployment:
    name: str
    revision: int
    tag: str
    port: int  # the stable port: the endpoint keeps it across redeploys and rollbacks
    pid: int  # the serving revision's supervisor
    backend_port: int
    changed: bool = True
    # The API key, only when this apply generated it: shown once, stored nowhere.
    api_key: Optional[str] = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/predict"


# paths


def logs_dir(store: Optional[Store] = None) -> Path:
    """`<CONDUIT_HOME>/logs`; without a store, found without opening one (the standby's start)."""
    return (store.home if store is not None else conduit_home()) / "logs"


def backend_file(store: Store, name: str) -> Path:
    return store.home / "run" / f"{name}.backend"


def metrics_dir(store: Store, name: str, revision: Optional[int] = None) -> Path:
    """The deployment's Prometheus multiprocess folders, one per revision (`r<revision>`): its
    /metrics counts its own requests only, and no other deployment's start wipes them."""
    folder = store.home / "run" / "metrics" / name
    return folder if revision is None else folder / f"r{revision}"


def point_router_at(store: Store, name: str, port: Optional[int]) -> None:
    """Atomically replace the backend port the router reads for each new connection."""
    path = backend_file(store, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(f"{port or ''}\n")
    os.replace(staging, path)


def ready_timeout() -> float:
    return float(os.environ.get(READY_TIMEOUT_ENV) or DEFAULT_READY_TIMEOUT_S)


def without_plain_key() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != PLAIN_KEY_ENV}


# apply


def next_revision_standby() -> contextlib.AbstractContextManager:
    """The next revision's supervisor, started now so that it imports BentoML while this process
    validates and builds (see `conduit.targets.standby`); dismissed on leaving the block unless a
    revision was handed to it."""
    return Standby.start(logs_dir()) or contextlib.nullcontext()


def apply(
    manifest,
    api_key: str | None = None,
    progress: Progress = print,
    manifest_path: str | None = None,
    standby: Optional[Standby] = None,
    warnings: Sequence[str] = (),
) -> Deployment:
    """Build `manifest` and serve it as the next revision of its name (see the module doc).
    Nothing changed (same Bento, same key, revision alive) means nothing is restarted.
    `standby`: one from `next_revision_standby()`, started before the manifest was loaded.
    `warnings`: what loading it warned about, kept with the revision for `conduit status`."""
    store = Store()
    name = manifest.name
    starting = contextlib.nullcontext(standby) if standby is not None else next_revision_standby()
    with starting as waiting, store.lock(name):
        reconcile(store, name, progress)
        current = store.serving(name)
        key = keys.resolve(store, api_key, current.key_sha256 if current else None)
        built = build_bento(manifest, progress, store)
        if current is not None and is_unchanged(current, built, key.sha256):
            ensure_router(store, name, progress)
            store.update_revision(name, current.revision, warnings=warnings)
            progress(f"✅ Nothing changed: {name} revision {current.revision} already serves {built.tag}")
            return deployment_of(store, current, changed=False)
        try:
            deployment = roll_out(
                store, name, built.tag, key.sha256, progress, manifest_path=manifest_path, standby=waiting, warnings=warnings
            )
        except KeyboardInterrupt:
            settle_key_of_interrupted(store, name, key, progress)
            raise
        keys.remember(store, key)
    show_generated_key(key, progress)
    return Deployment(**{**deployment.__dict__, "api_key": key.generated})


def settle_key_of_interrupted(store: Store, name: str, key: keys.ResolvedKey, progress: Progress) -> None:
    """A Ctrl-C that came during the switch takes effect after it: the new revision serves, so
    its key is remembered and, when generated, shown (else nobody could call the endpoint)."""
    serving = store.serving(name)
    if serving is not None and serving.key_sha256 == key.sha256:
        keys.remember(store, key)
        show_generated_key(key, progress)


def show_generated_key(key: keys.ResolvedKey, progress: Progress) -> None:
    if key.generated:
        progress(f"🔑 API key (shown once; only its hash is kept): {key.generated}")


def build_bento(manifest, progress: Progress, store: Store):
    """The BuildResult; a failure of any kind becomes a DeployError that says what still serves
    (checked, not assumed: a full disk that failed the build may have stopped the server too)."""
    from conduit.build import build

    try:
        return build(manifest, progress=progress)
    except Exception as exc:  # any build failure leaves the serving revision alone
        keeps = f"; {what_serves(store, manifest.name)}" if store.serving(manifest.name) else ""
        message = str(exc) if isinstance(exc, ConduitError) else f"{type(exc).__name__}: {exc}"
        raise DeployError(f"build of {manifest.name} failed{keeps}: {message}") from exc


def is_unchanged(current: Revision, built, key_sha256: str) -> bool:
    """Same Bento (not rebuilt by force_rebuild), same key, and its server still runs and answers
    (one that hangs is replaced, not reported as serving)."""
    return (
        built.reused
        and current.tag == built.tag
        and current.key_sha256 == key_sha256
        and processes.is_ours(current.pid, SUPERVISOR_MODULE)
        and answers(current)
    )


def roll_out(
    store: Store,
    name: str,
    tag: str,
    key_sha256: str,
    progress: Progress,
    note: str = "",
    manifest_path: str | None = None,
    standby: Optional[Standby] = None,
    warnings: Sequence[str] = (),
) -> Deployment:
    """Start `tag` as a new revision, switch the endpoint to it once ready, retire the rest.
    `manifest_path` and `warnings` are the revision's origin, shown by `conduit status`.
    Ctrl-C is held off throughout but while waiting for ready (see `conduit.targets.interrupts`):
    it then fails the new revision; anywhere else it takes effect once the step is done."""
    store.ensure_deployment(name, manifest_path)
    revision: Optional[Revision] = None
    started = time.monotonic()
    with interrupts.deferred() as shield:
        try:
            revision = store.add_revision(name, tag, key_sha256, note, manifest_path, warnings)
            revision = start_revision(store, revision, standby)
            progress(f"⏳ Starting revision {revision.revision} of {name} ({tag})")
            # A first deploy's router starts while the revision loads; it refuses connections until
            # pointed at a ready revision below.
            record = ensure_router(store, name, progress)
            assert revision.port is not None and revision.pid is not None  # start_revision gave it both
            with shield.lifted():
                processes.wait_ready(revision.port, revision.pid, SUPERVISOR_MODULE, ready_timeout())
        except BaseException as exc:  # also Ctrl-C: never leave a half-started revision running
            if revision is None:
                raise
            fail_revision(store, store.revision(name, revision.revision) or revision, exc)
        progress(f"✅ Revision {revision.revision} ready in {time.monotonic() - started:.1f}s")
        serving = switch_to(store, revision, progress)
        progress(f"🌍 Endpoint: {record.endpoint}")
    return deployment_of(store, serving)


def switch_to(store: Store, revision: Revision, progress: Progress) -> Revision:
    """Point the endpoint at a ready revision and retire the one it replaces, as one step: the
    store records the new revision serving and the old one archived in one transaction. (Run
    with interrupts held, as `roll_out` does.)"""
    replaced = store.serving(revision.name)
    point_router_at(store, revision.name, revision.port)
    try:
        serving = store.promote(revision.name, revision.revision)
    except BaseException as exc:  # noqa: BLE001 the store refused: the endpoint goes back to what it records
        point_router_at(store, revision.name, replaced.port if replaced else None)
        fail_revision(store, revision, exc)
    if replaced is not None:
        processes.stop_revision(replaced.pid, replaced.log_path)
        progress(f"📦 Archived revision {replaced.revision}")
    return serving


def start_revision(store: Store, revision: Revision, standby: Optional[Standby] = None) -> Revision:
    name, tag, key_sha256 = revision.name, revision.tag, revision.key_sha256
    port = processes.free_port()
    log_path = logs_dir(store) / f"{name}-r{revision.revision}.log"
    ready_url = f"http://127.0.0.1:{port}/readyz"
    serve = serve_command(tag, port)
    revision_env = {
        **prediction_log.revision_env(name, revision.revision),  # where its prediction log goes
        METRICS_DIR_ENV: str(metrics_dir(store, name, revision.revision)),
    }
    pid = standby.hand(serve, ready_url, log_path, {API_KEY_SHA256_ENV: key_sha256, **revision_env}) if standby else None
    if pid is None:
        command = processes.module_command(SUPERVISOR_MODULE, "--ready-url", ready_url, "--", *serve)
        pid = processes.start_detached(command, log_path, {**serve_env(key_sha256), **revision_env})
    return store.update_revision(name, revision.revision, port=port, pid=pid, log_path=str(log_path))


def fail_revision(store: Store, revision: Revision, exc: BaseException) -> NoReturn:
    """Stop and record a revision that did not become ready, then raise why (with its log).
    Done whole even under a second Ctrl-C."""
    with interrupts.deferred():
        processes.stop_revision(revision.pid, revision.log_path)
        store.fail(revision.name, revision.revision, failure_note(exc))
        if store.serving(revision.name) is None:  # a first deploy that failed: its router has nothing to route to
            processes.stop(store.require(revision.name).router_pid, ROUTER_MODULE)
    if not isinstance(exc, processes.NotReady):
        raise exc
    reason = str(exc)
    still = what_serves(store, revision.name)
    cause = processes.first_cause(revision.log_path)
    if cause:
        reason = f"{reason}: {cause}"
    store.update_revision(revision.name, revision.revision, note=reason)
    tail = processes.log_tail(revision.log_path, LOG_TAIL_LINES)
    raise DeployError(
        f"revision {revision.revision} of {revision.name} failed: {reason}; {still}.\n"
        f"--- last lines of {revision.log_path} ---\n{tail}"
    ) from None


def failure_note(exc: BaseException) -> str:
    if isinstance(exc, processes.NotReady):
        return str(exc)
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return f"interrupted ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def what_serves(store: Store, name: str) -> str:
    """What serves `name` now, checked rather than assumed: "revision N keeps serving" only when
    its server answers /readyz."""
    serving = store.serving(name)
    if serving is None:
        return "nothing is serving"
    if answers(serving):
        return f"revision {serving.revision} keeps serving"
    return f"revision {serving.revision} is recorded as serving but does not answer (see conduit status {name})"


def answers(revision: Optional[Revision]) -> bool:
    """Whether the revision's server answers /readyz now (within `processes.answers_ready`'s timeout)."""
    return revision is not None and revision.port is not None and processes.is_ready(revision.port)


def reconcile(store: Store, name: str, progress: Optional[Progress] = None) -> list[str]:
    """Finish what an interrupted or killed command left behind; call it holding `store.lock(name)`.
    A revision still `starting` was being started by a command that is gone: its processes are
    stopped and it is marked failed ("interrupted"). A server still running for a revision that
    does not serve is stopped, and so is the router of a deployment nothing serves. Returns what
    it did, in words (also told to `progress`)."""
    done: list[str] = []
    for revision in store.revisions(name):
        if revision.state == "starting":
            processes.stop_revision(revision.pid, revision.log_path)
            store.fail(name, revision.revision, "interrupted")
            done.append(f"revision {revision.revision} was left starting by an interrupted command: stopped, marked failed")
        elif revision.state != "serving" and processes.is_ours(revision.pid, SUPERVISOR_MODULE):
            processes.stop_revision(revision.pid, revision.log_path)
            done.append(f"revision {revision.revision} ({revision.state}) still ran: stopped")
    record = store.deployment(name)
    if record is not None and store.serving(name) is None and processes.is_ours(record.router_pid, ROUTER_MODULE):
        processes.stop(record.router_pid, ROUTER_MODULE)
        done.append("its router ran with nothing to serve: stopped")
    for line in done:
        if progress is not None:
            progress(f"🧹 {name}: {line}")
    return done


def ensure_router(store: Store, name: str, progress: Progress) -> DeploymentRecord:
    """Start the deployment's router if it is not running, on its recorded port when free."""
    record = store.require(name)
    if processes.is_ours(record.router_pid, ROUTER_MODULE):
        return record
    listener = router_socket(record, progress)
    try:
        command = processes.module_command(
            ROUTER_MODULE, "--fd", str(listener.fileno()), "--backend-file", str(backend_file(store, name))
        )
        log_path = logs_dir(store) / f"{name}-router.log"
        pid = processes.start_detached(command, log_path, without_plain_key(), pass_fds=[listener.fileno()])
        store.update_deployment(name, port=listener.getsockname()[1], router_pid=pid)
    finally:
        listener.close()
    return store.require(name)


def router_socket(record: DeploymentRecord, progress: Progress):
    if record.port:
        try:
            return processes.listening_socket(record.port)
        except OSError:
            progress(f"⚠️  Port {record.port} of {record.name} is taken by another program; the endpoint moves")
    return processes.listening_socket(0)


def deployment_of(store: Store, revision: Revision, changed: bool = True) -> Deployment:
    record = store.require(revision.name)
    return Deployment(
        name=revision.name,
        revision=revision.revision,
        tag=revision.tag,
        port=record.port or 0,
        pid=revision.pid or 0,
        backend_port=revision.port or 0,
        changed=changed,
    )


# rollback, delete


def rollback_target(store: Store, name: str, to: Optional[int]) -> Revision:
    current = store.serving(name)
    revisions = store.revisions(name)
    if to is None:
        earlier = [r for r in revisions if r.state == "archived" and (current is None or r.tag != current.tag)]
        if not earlier:
            raise UsageError(f"{name} has no earlier revision to roll back to")
        return earlier[-1]
    target = store.revision(name, to)
    if target is None:
        raise UsageError(f"{name} has no revision {to} (revisions: {', '.join(str(r.revision) for r in revisions)})")
    if target.state == "failed":
        raise UsageError(f"revision {to} of {name} never served (it failed); pick a revision that served")
    if current is not None and target.revision == current.revision:
        raise UsageError(f"revision {to} of {name} is already serving")
    return target


def rollback(name: str, to: Optional[int] = None, progress: Progress = print) -> Deployment:
    """Serve an earlier revision's Bento again, as a new revision. It keeps the key the current
    revision accepts, so a rollback never brings back a key that was replaced."""
    store = Store()
    with store.lock(name):
        store.require(name)
        reconcile(store, name, progress)
        target = rollback_target(store, name, to)
        current = store.serving(name)
        key_sha256 = current.key_sha256 if current else target.key_sha256
        progress(f"↩️  Rolling {name} back to revision {target.revision} ({target.tag})")
        return roll_out(
            store,
            name,
            target.tag,
            key_sha256,
            progress,
            note=f"rollback to r{target.revision}",
            manifest_path=target.manifest_path,
            warnings=target.warnings,
        )


def delete(name: str, progress: Progress = print) -> None:
    """Stop every process of the deployment and forget it (logs and built Bentos are kept)."""
    store = Store()
    # Done whole: a Ctrl-C midway would leave a deployment recorded as serving with its server stopped.
    with store.lock(name), interrupts.deferred():
        record = store.require(name)
        revisions = store.revisions(name)
        router_running = processes.is_ours(record.router_pid, ROUTER_MODULE)
        # Also a revision whose supervisor was killed outright: its server may serve on unsupervised.
        running = [r.revision for r in revisions if processes.stop_revision(r.pid, r.log_path)]
        processes.stop(record.router_pid, ROUTER_MODULE)
        backend_file(store, name).unlink(missing_ok=True)
        shutil.rmtree(metrics_dir(store, name), ignore_errors=True)
        store.remove_deployment(name)
    progress(f"🗑️  Deleted {name}: {what_was_stopped(running, router_running)}")


def what_was_stopped(revisions: list[int], router: bool) -> str:
    """`stopped revision 2 and its router`, or, when nothing ran, that it was not running."""
    numbers = in_words([str(number) for number in revisions]) if revisions else ""
    stopped = [f"revision{'s' if len(revisions) > 1 else ''} {numbers}"] if revisions else []
    stopped += ["its router"] if router else []
    return f"stopped {in_words(stopped)}" if stopped else "it was not running, so nothing was stopped"


def in_words(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    *rest, last = items
    return f"{', '.join(rest)} and {last}" if rest else last


# status


@dataclass(frozen=True)
class DeploymentStatus:
    record: DeploymentRecord
    revisions: list[Revision]
    serving: Optional[Revision]
    serving_alive: bool
    router_alive: bool
    # Processes of the serving revision that run on without its supervisor (killed outright).
    orphans: int = 0
    # Whether the serving revision's server answered /readyz just now (asked only while it runs).
    answering: bool = True
    # Why it serves less than fully (a full disk: no logs, no metrics), or None.
    degraded: Optional[str] = None

    @property
    def endpoint(self) -> Optional[str]:
        """The URL, once a revision serves: a deployment whose only revision failed has none."""
        return self.record.endpoint if self.serving is not None else None

    @property
    def manifest_path(self) -> Optional[str]:
        """The manifest the serving revision was applied from (after a rollback, the one that
        built its Bento); stores older than that column know only the last applied one."""
        return (self.serving and self.serving.manifest_path) or self.record.manifest_path

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.serving.warnings if self.serving is not None else ()

    @property
    def state(self) -> str:
        if self.serving is None:
            last = self.revisions[-1].state if self.revisions else "stopped"
            return last if last in ("failed", "starting") else "stopped"
        if not self.serving_alive and self.orphans:
            processes_left = f"{self.orphans} orphaned process{'es' if self.orphans > 1 else ''}"
            return f"down (its supervisor is gone, {processes_left} still running; run conduit apply or conduit delete to stop them)"
        if not self.serving_alive:
            return "down (server exited; see conduit logs)"
        if not self.router_alive:
            return "down (router exited; apply again to restart it)"
        if not self.answering:
            return f"down (its server runs but does not answer /readyz; see conduit logs {self.record.name})"
        return f"serving (degraded: {self.degraded})" if self.degraded else "serving"

    @property
    def serves(self) -> bool:
        """Whether the endpoint answers (degraded or not)."""
        return self.state.startswith("serving")


# Less free space than this where logs and metrics are written counts as a full disk.
LOW_SPACE_BYTES = 1 << 20


def status(name: str, store: Store | None = None) -> DeploymentStatus:
    """What serves `name`, checked: its processes run, and its server answers /readyz."""
    store = store or Store()
    record = store.require(name)
    reconcile_if_idle(store, name)
    serving = store.serving(name)
    serving_alive = serving is not None and processes.is_ours(serving.pid, SUPERVISOR_MODULE)
    return DeploymentStatus(
        answering=serving_alive and answers(serving),
        degraded=space_left_problem(store),
        record=record,
        revisions=store.revisions(name),
        serving=serving,
        serving_alive=serving_alive,
        router_alive=processes.is_ours(record.router_pid, ROUTER_MODULE),
        orphans=len(processes.writers_of(serving.log_path)) if serving is not None and not serving_alive else 0,
    )


def reconcile_if_idle(store: Store, name: str) -> None:
    """`reconcile` unless a command holds the name's lock (its `starting` revision is really
    starting); a store that cannot be written now (a full disk) is reported as it is."""
    try:
        with store.lock(name, wait=False) as held:
            if held:
                reconcile(store, name)
    except (OSError, sqlite3.Error):
        pass


def space_left_problem(store: Store) -> Optional[str]:
    """Why logs and metrics cannot be written (the disk under CONDUIT_HOME is full), or None."""
    try:
        free = shutil.disk_usage(store.home).free
    except OSError:
        return None
    if free >= LOW_SPACE_BYTES:
        return None
    return f"the disk holding {store.home} is full ({free // 1024} KiB free): logs and metrics are not written"


def statuses() -> list[DeploymentStatus]:
    store = Store()
    return [status(record.name, store) for record in store.deployments()]


def log_path(name: str, revision: Optional[int] = None, store: Optional[Store] = None) -> Path:
    """The log of `revision`, default the serving one (else the latest). `store`: one already open
    (a follower asks several times a second; opening one runs the schema and migrations)."""
    store = store or Store()
    store.require(name)
    revisions = store.revisions(name)
    if revision is not None:
        chosen = store.revision(name, revision)
        if chosen is None:
            raise UsageError(f"{name} has no revision {revision}")
    else:
        chosen = store.serving(name) or (revisions[-1] if revisions else None)
    if chosen is None or not chosen.log_path:
        raise UsageError(f"{name} has no log yet")
    return Path(chosen.log_path)
