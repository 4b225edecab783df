"""The local target: supervised `bentoml serve` on 127.0.0.1, with revisions and one stable URL.

Per deployment name there is one router (`targets/router.py`) on a port that never changes, and
one serving revision behind it: a supervisor (`targets/supervisor.py`) running `bentoml serve` on
a backend port. The store (`conduit.store`) records both; logs go to
`$CONDUIT_HOME/logs/<name>-r<revision>.log` (the router's to `<name>-router.log`).

Rolling out a revision (apply, rollback): start it on a fresh backend port, wait for `/readyz`,
point the router at it (new connections go there at once), then stop and archive the old one.
A revision that fails to build or to become ready is recorded as failed, its process stopped, and
the old revision keeps serving; the error says why and carries the tail of its log.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NoReturn, Optional

from conduit import keys
from conduit.errors import ConduitError, DeployError, UsageError
from conduit.paths import conduit_home
from conduit.serving.process import API_KEY_SHA256_ENV, PLAIN_KEY_ENV, serve_command, serve_env
from conduit.store import DeploymentRecord, Revision, Store
from conduit.targets import processes
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
        current = store.serving(name)
        key = keys.resolve(store, api_key, current.key_sha256 if current else None)
        built = build_bento(manifest, progress, current)
        if current is not None and is_unchanged(current, built, key.sha256):
            ensure_router(store, name, progress)
            store.update_revision(name, current.revision, warnings=warnings)
            progress(f"✅ Nothing changed: {name} revision {current.revision} already serves {built.tag}")
            return deployment_of(store, current, changed=False)
        deployment = roll_out(
            store, name, built.tag, key.sha256, progress, manifest_path=manifest_path, standby=waiting, warnings=warnings
        )
        keys.remember(store, key)
    if key.generated:
        progress(f"🔑 API key (shown once; only its hash is kept): {key.generated}")
    return Deployment(**{**deployment.__dict__, "api_key": key.generated})


def build_bento(manifest, progress: Progress, current: Optional[Revision]):
    """The BuildResult; a failure of any kind becomes a DeployError that says what still serves."""
    from conduit.build import build

    try:
        return build(manifest, progress=progress)
    except Exception as exc:  # any build failure leaves the serving revision alone
        keeps = f"; revision {current.revision} keeps serving" if current else ""
        message = str(exc) if isinstance(exc, ConduitError) else f"{type(exc).__name__}: {exc}"
        raise DeployError(f"build of {manifest.name} failed{keeps}: {message}") from exc


def is_unchanged(current: Revision, built, key_sha256: str) -> bool:
    """Same Bento (not rebuilt by force_rebuild), same key, and its server still runs."""
    return (
        built.reused
        and current.tag == built.tag
        and current.key_sha256 == key_sha256
        and processes.is_ours(current.pid, SUPERVISOR_MODULE)
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
    `manifest_path` and `warnings` are the revision's origin, shown by `conduit status`."""
    store.ensure_deployment(name, manifest_path)
    revision = store.add_revision(name, tag, key_sha256, note, manifest_path, warnings)
    revision = start_revision(store, revision, standby)
    progress(f"⏳ Starting revision {revision.revision} of {name} ({tag})")
    started = time.monotonic()
    # A first deploy's router starts while the revision loads; it refuses connections until
    # pointed at a ready revision below.
    record = ensure_router(store, name, progress)
    assert revision.port is not None and revision.pid is not None  # start_revision gave it both
    try:
        processes.wait_ready(revision.port, revision.pid, SUPERVISOR_MODULE, ready_timeout())
    except BaseException as exc:  # noqa: BLE001 also Ctrl-C: never leave a half-started revision running
        fail_revision(store, revision, exc)
    progress(f"✅ Revision {revision.revision} ready in {time.monotonic() - started:.1f}s")
    point_router_at(store, name, revision.port)
    serving = store.update_revision(name, revision.revision, state="serving")
    retire_others(store, name, revision.revision, progress)
    progress(f"🌍 Endpoint: {record.endpoint}")
    return deployment_of(store, serving)


def start_revision(store: Store, revision: Revision, standby: Optional[Standby] = None) -> Revision:
    name, tag, key_sha256 = revision.name, revision.tag, revision.key_sha256
    port = processes.free_port()
    log_path = logs_dir(store) / f"{name}-r{revision.revision}.log"
    ready_url = f"http://127.0.0.1:{port}/readyz"
    serve = serve_command(tag, port)
    pid = standby.hand(serve, ready_url, log_path, {API_KEY_SHA256_ENV: key_sha256}) if standby else None
    if pid is None:
        command = processes.module_command(SUPERVISOR_MODULE, "--ready-url", ready_url, "--", *serve)
        pid = processes.start_detached(command, log_path, serve_env(key_sha256))
    return store.update_revision(name, revision.revision, port=port, pid=pid, log_path=str(log_path))


def fail_revision(store: Store, revision: Revision, exc: BaseException) -> NoReturn:
    """Stop and record a revision that did not become ready, then raise why (with its log)."""
    processes.stop(revision.pid, SUPERVISOR_MODULE)
    reason = str(exc) if isinstance(exc, processes.NotReady) else f"interrupted ({type(exc).__name__})"
    store.update_revision(revision.name, revision.revision, state="failed", note=reason)
    serving = store.serving(revision.name)
    if serving is None:  # a first deploy that failed: its router has nothing to route to
        processes.stop(store.require(revision.name).router_pid, ROUTER_MODULE)
    if not isinstance(exc, processes.NotReady):
        raise exc
    still = f"revision {serving.revision} keeps serving" if serving else "nothing is serving"
    cause = processes.first_cause(revision.log_path)
    if cause:
        reason = f"{reason}: {cause}"
    store.update_revision(revision.name, revision.revision, note=reason)
    tail = processes.log_tail(revision.log_path, LOG_TAIL_LINES)
    raise DeployError(
        f"revision {revision.revision} of {revision.name} failed: {reason}; {still}.\n"
        f"--- last lines of {revision.log_path} ---\n{tail}"
    ) from None


def retire_others(store: Store, name: str, keep: int, progress: Progress) -> None:
    """Stop every other revision that still runs (the old one, and any left by an interrupted apply)."""
    for revision in store.revisions(name):
        if revision.revision == keep or revision.state in ("archived", "failed"):
            continue
        processes.stop(revision.pid, SUPERVISOR_MODULE)
        store.update_revision(name, revision.revision, state="archived")
        progress(f"📦 Archived revision {revision.revision}")


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
    with store.lock(name):
        record = store.require(name)
        revisions = store.revisions(name)
        running = [r.revision for r in revisions if processes.is_ours(r.pid, SUPERVISOR_MODULE)]
        router_running = processes.is_ours(record.router_pid, ROUTER_MODULE)
        for revision in revisions:
            processes.stop(revision.pid, SUPERVISOR_MODULE)
        processes.stop(record.router_pid, ROUTER_MODULE)
        backend_file(store, name).unlink(missing_ok=True)
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
            return "failed" if self.revisions and self.revisions[-1].state == "failed" else "stopped"
        if not self.serving_alive:
            return "down (server exited; see conduit logs)"
        return "serving" if self.router_alive else "down (router exited; apply again to restart it)"


def status(name: str, store: Store | None = None) -> DeploymentStatus:
    store = store or Store()
    record = store.require(name)
    serving = store.serving(name)
    return DeploymentStatus(
        record=record,
        revisions=store.revisions(name),
        serving=serving,
        serving_alive=serving is not None and processes.is_ours(serving.pid, SUPERVISOR_MODULE),
        router_alive=processes.is_ours(record.router_pid, ROUTER_MODULE),
    )


def statuses() -> list[DeploymentStatus]:
    store = Store()
    return [status(record.name, store) for record in store.deployments()]


def log_path(name: str, revision: Optional[int] = None) -> Path:
    """The log of `revision`, default the serving one (else the latest)."""
    store = Store()
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
