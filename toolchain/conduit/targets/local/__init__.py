"""The local target: every deployment of a CONDUIT_HOME behind one gateway on 127.0.0.1.

`apply` builds the Bento, records a new revision `starting` in the store with how it is to be
served (`settings.py`: project, scaling, memory, interpreter), makes sure the gateway runs (one
per CONDUIT_HOME, on `CONDUIT_PORT`, default 8765, kept alive by its keeper), and waits while the
gateway starts the revision's first replica: the gateway promotes it to `serving` once it answers
/readyz, or records it `failed` with why, and the old revision keeps serving (see `gateway.py`).
The endpoint is `http://127.0.0.1:<port>/v1/<project>/<name>/predict` and never changes.

Interrupts: Ctrl-C while waiting fails the new revision (unless the gateway promoted it first:
then it serves, and a generated key is still shown). A command killed outright leaves the
revision to the gateway, which finishes starting it or fails it: the store never has two revisions
serving (see `conduit.store`), and nothing is left `starting` for long.

`delete` removes the deployment from the store; the gateway stops its replicas (and the keeper
stops once nothing is left to serve). `status` reads the store and what the gateway last wrote.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from conduit import keys
from conduit.errors import ConduitError, DeployError, UsageError
from conduit.store import DeploymentRecord, Revision, Store
from conduit.targets.local import processes
from conduit.targets.local import settings as serve_settings
from conduit.targets.local.settings import DEFAULT_PROJECT, ServeSettings

Progress = Callable[[str], None]
PORT_ENV = "CONDUIT_PORT"
DEFAULT_PORT = 8765
KEEPER_MODULE = "conduit.targets.local.keeper"
GATEWAY_MODULE = "conduit.targets.local.gateway"
LOG_TAIL_LINES = 25
WAIT_POLL_S = 0.05
# Beyond the revision's ready timeout, what apply allows the gateway to say so itself.
WAIT_MARGIN_S = 30.0
DELETE_WAIT_S = 20.0
VIEW_LAG_S = 5.0  # the gateway writes its state file at most every 0.25 s: a bound, not a wait


@dataclass(frozen=True)
class Deployment:
    name: str
    revision: int
    tag: str
    port: int  # the gateway's: the same for every deployment of this CONDUIT_HOME
    project: str = DEFAULT_PROJECT
    changed: bool = True
    # The API key, only when this apply generated it: shown once, stored nowhere.
    api_key: Optional[str] = None

    @property
    def endpoint(self) -> str:
        return endpoint_url(self.port, self.project, self.name)


def endpoint_url(port: int, project: str, name: str) -> str:
    return f"http://127.0.0.1:{port}/v1/{project}/{name}/predict"


# paths and the environment a replica gets


def logs_dir(store: Store) -> Path:
    return store.home / "logs"


def metrics_dir(store: Store, name: str, revision: Optional[int] = None) -> Path:
    """The deployment's Prometheus multiprocess folders, one per revision (`r<revision>`), shared by
    its replicas (the files are per process): its /metrics counts its own requests only."""
    folder = store.home / "run" / "metrics" / name
    return folder if revision is None else folder / f"r{revision}"


def revision_env(store: Store, revision: Revision) -> dict[str, str]:
    """What a replica of `revision` is told beyond the serving environment: the key's hash (never
    the key), where its prediction log and its metrics go."""
    from conduit.serving import prediction_log
    from conduit.targets.local.bentoml_serving import API_KEY_SHA256_ENV, METRICS_DIR_ENV

    return {
        API_KEY_SHA256_ENV: revision.key_sha256,
        **prediction_log.revision_env(revision.name, revision.revision),
        METRICS_DIR_ENV: str(metrics_dir(store, revision.name, revision.revision)),
    }


# the gateway


def keeper_file(store: Store) -> Path:
    return store.home / "run" / "gateway" / "keeper.json"


def running_gateway(store: Store) -> Optional[dict[str, Any]]:
    """{"pid": the keeper's, "port": ...} while this home's keeper runs; {"pid": None, "port": ...,
    "orphan": gateway pid} when its gateway serves on without a keeper (the keeper was killed);
    else None."""
    from conduit.targets.local.telling import read_state

    try:
        info = json.loads(keeper_file(store).read_text())
    except (OSError, ValueError):
        info = {}
    if processes.is_ours(info.get("pid"), KEEPER_MODULE):
        return info
    state = read_state(store.home)
    if processes.is_ours(state.get("pid"), GATEWAY_MODULE):
        return {"pid": None, "port": state.get("port"), "orphan": state["pid"]}
    return None


def adopt_orphan_gateway(store: Store, orphan: int, progress: Progress) -> None:
    """A gateway whose keeper was killed serves on unsupervised: it is killed outright (so its
    replicas keep running, for the next gateway to adopt) and a new keeper takes the port."""
    progress(f"🚪 The gateway (pid {orphan}) ran without its keeper: restarting it under a new one")
    with contextlib.suppress(ProcessLookupError):
        os.kill(orphan, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes.is_ours(orphan, GATEWAY_MODULE) and time.monotonic() < deadline:
        time.sleep(WAIT_POLL_S)


def wanted_port() -> int:
    text = os.environ.get(PORT_ENV) or str(DEFAULT_PORT)
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{PORT_ENV}={text!r} is not a port number") from None


def ensure_gateway(store: Store, progress: Progress) -> int:
    """The running gateway's port, starting it (its keeper) first when it does not run."""
    with store.lock("_gateway"):
        running = running_gateway(store)
        if running is not None and running.get("orphan"):
            adopt_orphan_gateway(store, running["orphan"], progress)
            running = None
        if running is not None:
            if os.environ.get(PORT_ENV) and wanted_port() != running["port"]:
                progress(f"⚠️  The gateway of {store.home} runs on port {running['port']}, not {PORT_ENV}={wanted_port()}: "
                         "delete every deployment to restart it on another port")
            return int(running["port"])
        port = wanted_port()
        try:
            listener = processes.listening_socket(port)
        except OSError as error:
            raise DeployError(
                f"port {port} on 127.0.0.1 is taken by another program ({error.strerror}); the gateway serves every "
                f"deployment on one port: set {PORT_ENV} to a free port"
            ) from None
        try:
            command = processes.module_command(KEEPER_MODULE, "--fd", str(listener.fileno()))
            pid = processes.start_detached(command, logs_dir(store) / "gateway.log", without_plain_key(), pass_fds=[listener.fileno()])
        finally:
            listener.close()
        path = keeper_file(store)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"pid": pid, "port": port}))
        progress(f"🚪 Gateway started on 127.0.0.1:{port}")
        return port


def stop_gateway(store: Store) -> None:
    running = running_gateway(store)
    if running is not None and running.get("orphan"):
        processes.stop(running["orphan"], GATEWAY_MODULE, grace_s=DELETE_WAIT_S)
    elif running is not None:
        processes.stop(running["pid"], KEEPER_MODULE, grace_s=DELETE_WAIT_S)
    keeper_file(store).unlink(missing_ok=True)


def gateway_now(store: Store) -> tuple[Optional[dict[str, Any]], dict[str, Any]]:
    """(`running_gateway`, what that gateway last wrote: {} when none runs), read once."""
    from conduit.targets.local.telling import read_state  # not gateway.py: no proxy to import

    running = running_gateway(store)
    return running, (read_state(store.home) if running is not None else {})


def gateway_view(store: Store) -> dict[str, Any]:
    """What the gateway last wrote, when it runs ({} otherwise)."""
    return gateway_now(store)[1]


def without_plain_key() -> dict[str, str]:
    from conduit.targets.local.bentoml_serving import PLAIN_KEY_ENV

    return {k: v for k, v in os.environ.items() if k != PLAIN_KEY_ENV}


# apply


def apply(
    manifest,
    api_key: str | None = None,
    progress: Progress = print,
    manifest_path: str | None = None,
    warnings: Sequence[str] = (),
) -> Deployment:
    """Build `manifest` and serve it as the next revision of its name (see the module doc).
    Nothing changed (same Bento, key and settings, still serving) means nothing is restarted.
    `warnings`: what loading it warned about, kept with the revision for `conduit status`."""
    store = Store()
    name = manifest.name
    with store.lock(name):
        current = store.serving(name)
        key = keys.resolve(store, api_key, current.key_sha256 if current else None)
        built = build_bento(manifest, progress, store)
        settings = serve_settings.from_manifest(manifest, python=environment_python(manifest, built, progress))
        port = ensure_gateway(store, progress)
        if current is not None and is_unchanged(current, built, key.sha256, settings):
            store.update_revision(name, current.revision, warnings=warnings)
            progress(f"✅ Nothing changed: {name} revision {current.revision} already serves {built.tag}")
            return deployment_of(current, port, changed=False)
        try:
            serving = roll_out(store, name, built.tag, key.sha256, settings, progress, manifest_path=manifest_path, warnings=warnings)
        except KeyboardInterrupt:
            settle_key_of_interrupted(store, name, key, progress)
            raise
        keys.remember(store, key)
    show_generated_key(key, progress)
    return Deployment(**{**deployment_of(serving, port).__dict__, "api_key": key.generated})


def environment_python(manifest, built, progress: Progress) -> Optional[str]:
    """The interpreter of the Bento's own environment (`conduit.environments`, where present);
    None: conduit's own."""
    try:
        from conduit import environments
    except ImportError:
        return None
    from conduit.targets.local.bentoml_serving import bento_folder

    folder = bento_folder(built.tag)
    environment = environments.ensure(folder, manifest.python_version, force=manifest.force_rebuild, progress=progress)
    return str(environment.python)


def settle_key_of_interrupted(store: Store, name: str, key: keys.ResolvedKey, progress: Progress) -> None:
    """A Ctrl-C that came as the gateway promoted the new revision: it serves, so its key is
    remembered and, when generated, shown (else nobody could call the endpoint)."""
    serving = store.serving(name)
    if serving is not None and serving.key_sha256 == key.sha256:
        keys.remember(store, key)
        show_generated_key(key, progress)


def show_generated_key(key: keys.ResolvedKey, progress: Progress) -> None:
    if key.generated:
        progress(f"🔑 API key (shown once; only its hash is kept): {key.generated}")


def build_bento(manifest, progress: Progress, store: Store):
    """The BuildResult; a failure of any kind becomes a DeployError that says what still serves."""
    from conduit.build import build

    try:
        return build(manifest, progress=progress)
    except Exception as exc:  # any build failure leaves the serving revision alone
        keeps = f"; {what_serves(store, manifest.name)}" if store.serving(manifest.name) else ""
        message = str(exc) if isinstance(exc, ConduitError) else f"{type(exc).__name__}: {exc}"
        raise DeployError(f"build of {manifest.name} failed{keeps}: {message}") from exc


def is_unchanged(current: Revision, built, key_sha256: str, settings: ServeSettings) -> bool:
    """Same Bento (not rebuilt by force_rebuild), same key, same way of serving it."""
    stored = ServeSettings.from_dict(current.settings)
    return built.reused and current.tag == built.tag and current.key_sha256 == key_sha256 and stored == settings


def roll_out(
    store: Store,
    name: str,
    tag: str,
    key_sha256: str,
    settings: ServeSettings,
    progress: Progress,
    note: str = "",
    manifest_path: str | None = None,
    warnings: Sequence[str] = (),
) -> Revision:
    """Record `tag` as a new revision for the gateway to start and wait until it serves or fails."""
    store.ensure_deployment(name, manifest_path)
    before = store.serving(name)
    started = time.monotonic()
    revision: Optional[Revision] = None
    try:
        revision = store.add_revision(name, tag, key_sha256, note, manifest_path, warnings, settings.as_dict())
        log_path = logs_dir(store) / f"{name}-r{revision.revision}.log"
        revision = store.update_revision(name, revision.revision, log_path=str(log_path))
        progress(f"⏳ Starting revision {revision.revision} of {name} ({tag})")
        final = wait_for_gateway(store, revision, settings.ready_timeout_s + WAIT_MARGIN_S)
    except BaseException as exc:  # Ctrl-C (or anything): the revision must not start behind our back
        if revision is None or store.fail_if_starting(name, revision.revision, failure_note(exc)):
            raise
        final = store.revision(name, revision.revision) or revision
        if final.state != "serving":
            raise
    if final.state != "serving":
        raise failed_revision(store, final)
    wait_for_view(store, final)
    progress(f"✅ Revision {final.revision} ready in {time.monotonic() - started:.1f}s")
    if before is not None:
        progress(f"📦 Archived revision {before.revision} (its replicas stop once their requests are answered)")
    return final


def wait_for_gateway(store: Store, revision: Revision, timeout_s: float) -> Revision:
    """Poll the store until the gateway has promoted or failed `revision`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = store.revision(revision.name, revision.revision)
        if current is None:
            raise DeployError(f"{revision.name} was deleted while revision {revision.revision} was starting")
        if current.state != "starting":
            return current
        if running_gateway(store) is None:
            raise DeployError(f"the gateway stopped while revision {revision.revision} of {revision.name} was starting; "
                              f"see {logs_dir(store) / 'gateway.log'}")
        time.sleep(WAIT_POLL_S)
    store.fail_if_starting(revision.name, revision.revision, f"the gateway did not start it within {timeout_s:.0f}s")
    return store.revision(revision.name, revision.revision) or revision


def wait_for_view(store: Store, revision: Revision, timeout_s: float = VIEW_LAG_S) -> None:
    """Until the gateway's state file shows `revision` serving its name (it is written a moment
    after the promotion), so that a `conduit status` right after apply does not say "starting"."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if gateway_view(store).get("deployments", {}).get(revision.name, {}).get("revision") == revision.revision:
            return
        time.sleep(WAIT_POLL_S)


def failed_revision(store: Store, revision: Revision) -> DeployError:
    """Why the revision failed, with what still serves and the end of its log."""
    tail = processes.log_tail(revision.log_path, LOG_TAIL_LINES)
    return DeployError(
        f"revision {revision.revision} of {revision.name} failed: {revision.note}; {what_serves(store, revision.name)}.\n"
        f"--- last lines of {revision.log_path} ---\n{tail}"
    )


def failure_note(exc: BaseException) -> str:
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return f"interrupted ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def what_serves(store: Store, name: str) -> str:
    """What serves `name` now: "revision N keeps serving" while the gateway runs it."""
    serving = store.serving(name)
    if serving is None:
        return "nothing is serving"
    if running_gateway(store) is None:
        return f"revision {serving.revision} is recorded as serving but the gateway is not running (see conduit status {name})"
    return f"revision {serving.revision} keeps serving"


def deployment_of(revision: Revision, port: int, changed: bool = True) -> Deployment:
    project = ServeSettings.from_dict(revision.settings).project
    return Deployment(name=revision.name, revision=revision.revision, tag=revision.tag, port=port, project=project, changed=changed)


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
    """Serve an earlier revision's Bento again, as a new revision, with the settings it had. It
    keeps the key the current revision accepts, so a rollback never brings back a replaced key."""
    store = Store()
    with store.lock(name):
        store.require(name)
        target = rollback_target(store, name, to)
        current = store.serving(name)
        key_sha256 = current.key_sha256 if current else target.key_sha256
        settings = ServeSettings.from_dict(target.settings)
        port = ensure_gateway(store, progress)
        progress(f"↩️  Rolling {name} back to revision {target.revision} ({target.tag})")
        serving = roll_out(
            store, name, target.tag, key_sha256, settings, progress,
            note=f"rollback to r{target.revision}", manifest_path=target.manifest_path, warnings=target.warnings,
        )
    return deployment_of(serving, port)


def delete(name: str, progress: Progress = print) -> None:
    """Stop every replica of the deployment and forget it (built Bentos are kept, and its logs, in
    `logs/deleted/`; its prediction log stays where it is, and a new deployment of the name adds to it)."""
    store = Store()
    with store.lock(name):
        store.require(name)
        revisions = store.revisions(name)
        running = replicas_running(store, name)
        store.remove_deployment(name)
        stopped = wait_replicas_stopped(store, name, revisions)
        shutil.rmtree(metrics_dir(store, name), ignore_errors=True)
        archive_logs(store, revisions)
        if not store.deployments():
            stop_gateway(store)
    # Replicas, not processes (a replica is a leader and its workers); processes found by their
    # log but missing from the gateway's last state were one replica it had not written yet.
    count = len(running) or min(stopped, 1)
    what = f"stopped {count} replica{'s' if count != 1 else ''}" if count else "it had no replica running, so nothing was stopped"
    progress(f"🗑️  Deleted {name}: {what}")


def archive_logs(store: Store, revisions: list[Revision]) -> Optional[Path]:
    """Move the deployment's logs aside (`logs/deleted/<name>-<time>/`): a deployment applied again
    under the same name numbers its revisions from 1, and must not append to the old ones' logs."""
    logs = [Path(r.log_path) for r in revisions if r.log_path and Path(r.log_path).exists()]
    if not logs:
        return None
    folder = logs_dir(store) / "deleted" / f"{revisions[0].name}-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for log in logs:
            os.replace(log, folder / log.name)
    except OSError:  # a full disk, say: the logs stay where they are
        return None
    return folder


def replicas_of(store: Store, name: str) -> list[dict[str, Any]]:
    return [row for row in gateway_view(store).get("replicas", []) if row["name"] == name]


def replicas_running(store: Store, name: str) -> list[dict[str, Any]]:
    """The replicas of `name` the gateway last wrote down whose process still runs: also those
    a gateway killed outright left serving (then nobody else would count them)."""
    from conduit.targets.local.replicas import Started, is_same_process
    from conduit.targets.local.telling import read_state

    rows = [row for row in read_state(store.home).get("replicas", []) if row["name"] == name]
    return [row for row in rows if is_same_process(Started(row["pid"], row["port"], row["warm"], row["create_time"]))]


def wait_replicas_stopped(store: Store, name: str, revisions: list[Revision]) -> int:
    """Wait for the gateway to stop the deployment's replicas; whatever is still running after
    DELETE_WAIT_S (or with no gateway to stop it) is stopped here, found by its log. Returns how
    many processes were stopped here."""
    deadline = time.monotonic() + DELETE_WAIT_S
    while replicas_of(store, name) and time.monotonic() < deadline:
        time.sleep(WAIT_POLL_S)
    return sum(processes.stop_writers_of(r.log_path, grace_s=5.0) for r in revisions)


# status


@dataclass(frozen=True)
class DeploymentStatus:
    record: DeploymentRecord
    revisions: list[Revision]
    serving: Optional[Revision]
    gateway_port: Optional[int]  # None: the gateway does not run
    view: dict[str, Any]  # the gateway's summary of this deployment ({} when it has none)
    degraded: Optional[str] = None  # why it serves less than fully (a full disk), or None

    @property
    def project(self) -> str:
        return ServeSettings.from_dict(self.serving.settings).project if self.serving else DEFAULT_PROJECT

    @property
    def endpoint(self) -> Optional[str]:
        """The URL, once a revision serves: a deployment whose only revision failed has none."""
        if self.serving is None:
            return None
        return endpoint_url(self.gateway_port or wanted_port(), self.project, self.record.name)

    @property
    def manifest_path(self) -> Optional[str]:
        return (self.serving and self.serving.manifest_path) or self.record.manifest_path

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.serving.warnings if self.serving is not None else ()

    @property
    def replicas_ready(self) -> int:
        return int(self.view.get("replicas_ready", 0))

    @property
    def replicas_desired(self) -> int:
        return int(self.view.get("replicas_desired", 0))

    @property
    def last_request_at(self) -> Optional[float]:
        return self.view.get("last_request_at")

    @property
    def failing(self) -> Optional[str]:
        return self.view.get("failing")

    @property
    def state(self) -> str:
        if self.serving is None:
            last = self.revisions[-1].state if self.revisions else "stopped"
            return last if last in ("failed", "starting") else "stopped"
        if self.gateway_port is None:
            return "down (the gateway is not running; conduit apply starts it again)"
        if self.view.get("revision") != self.serving.revision:
            return "starting"
        state = self.view.get("state", "starting")
        if state == "serving" and self.degraded:
            return f"serving (degraded: {self.degraded})"
        if state == "starting" and self.failing:
            return f"starting (failing: {self.failing})"
        return state

    @property
    def serves(self) -> bool:
        """Whether the endpoint answers (degraded, or scaled to zero: a request wakes it)."""
        return self.state.startswith("serving") or self.state in ("scaled to zero", "scaling to zero")


UNSUPERVISED = "the gateway's keeper is gone, so nothing restarts the gateway if it dies; conduit apply restarts it"
# Less free space than this where logs and metrics are written counts as a full disk.
LOW_SPACE_BYTES = 1 << 20


def status(name: str, store: Store | None = None, gateway: Optional[tuple] = None) -> DeploymentStatus:
    """`gateway`: `gateway_now(store)` when the caller has it (`statuses` reads it once for all)."""
    store = store or Store()
    record = store.require(name)
    running, state = gateway if gateway is not None else gateway_now(store)
    view = state.get("deployments", {}).get(name, {})
    return DeploymentStatus(
        record=record,
        revisions=store.revisions(name),
        serving=store.serving(name),
        gateway_port=int(running["port"]) if running else None,
        view=view,
        degraded=space_left_problem(store) or (UNSUPERVISED if running and running.get("orphan") else None),
    )


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
    gateway = gateway_now(store)
    return [status(record.name, store, gateway) for record in store.deployments()]


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
