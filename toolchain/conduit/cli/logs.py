"""`conduit logs NAME [-n N] [--revision R] [-f] [--gateway]`: the last lines of a revision's server log.

`--gateway`: instead, the gateway's lines about NAME (`$CONDUIT_HOME/logs/gateway.log`): replicas
started, ready, drained, crashed and restarted, revisions promoted or failed.

With `-f` it goes on printing what the server appends, as `tail -f` does; following the serving
revision (no `--revision`), it moves on to the next revision's log when a redeploy or rollback
moves traffic there, since that is where the endpoint's requests now land. Ctrl-C stops it (exit 0).
"""
from __future__ import annotations

import codecs
import contextlib
import os
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO, Callable, Optional

import click

from conduit.errors import ConduitError

POLL_S = 0.25  # how often an idle follower looks for more lines (tail -f looks every second)


@click.command("logs")
@click.argument("name")
@click.option("-n", "--lines", default=50, show_default=True, type=click.IntRange(min=1), help="How many lines.")
@click.option("--revision", type=int, default=None, help="A revision other than the serving one.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (and the next revision's, after a redeploy).")
@click.option("--gateway", is_flag=True, help="The gateway's lines about NAME (scaling, restarts, promotions) instead.")
def command(name: str, lines: int, revision: Optional[int], follow: bool, gateway: bool) -> int:
    """Print the end of the serving (or given) revision's log."""
    from conduit import targets

    target = targets.get("local")
    if gateway:
        click.echo(gateway_lines(name, lines, follow or revision is not None))
        return 0
    path = target.log_path(name, revision)
    with open_log(path) as handle:
        click.echo(last_lines(handle, lines))
        if follow:
            current = (lambda: path) if revision is not None else (lambda: target.log_path(name))
            with contextlib.suppress(KeyboardInterrupt):
                follow_log(handle, current)
    return 0


def gateway_lines(name: str, lines: int, refused: bool) -> str:
    from conduit.errors import UsageError
    from conduit.store import Store

    if refused:
        raise UsageError("--gateway shows the gateway's lines about NAME; it takes neither -f nor --revision")
    store = Store()
    store.require(name)
    path = store.home / "logs" / "gateway.log"
    about = f"[conduit gateway] {name} ".encode()
    with open_log(path) as handle:  # streamed: the gateway's log holds every deployment's lines
        kept = deque((raw.decode("utf-8", "replace").rstrip("\n") for raw in handle if raw.startswith(about)), maxlen=lines)
    return "\n".join(kept)


def open_log(path: Path) -> BinaryIO:
    """The log, or while the server has not written one yet an empty stand-in (see follow_log)."""
    return open(path if path.exists() else os.devnull, "rb")


def last_lines(handle: BinaryIO, lines: int) -> str:
    """The last `lines` lines, read to the end so that following goes on from exactly there."""
    return b"".join(deque(handle, maxlen=lines)).decode("utf-8", "replace").rstrip()


def follow_log(handle: BinaryIO, current: Callable[[], Path]) -> None:
    """Print what is appended to the open log. When `current()` names another log (traffic moved
    to a new revision, or the log appeared), print that one from its start and follow it
    instead. Returns once the deployment is gone."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may arrive in halves
    try:
        while True:
            chunk = handle.read()
            if chunk:
                click.echo(decoder.decode(chunk), nl=False)
                continue
            time.sleep(POLL_S)
            newer = _current_log(current, Path(handle.name))
            if newer is None:
                return
            handle = _switched(handle, newer)
    finally:
        handle.close()


def _switched(handle: BinaryIO, newer: Path) -> BinaryIO:
    if handle.name == str(newer) or not newer.exists():
        return handle
    handle.close()
    click.echo(f"==> {newer} <==")  # the header tail prints between files
    return open(newer, "rb")


def _current_log(current: Callable[[], Path], following: Path) -> Optional[Path]:
    """The log the endpoint's requests reach now; None once the deployment was deleted."""
    from conduit.store import DeploymentNotFound

    try:
        return current()
    except DeploymentNotFound:
        click.echo("==> the deployment was deleted: nothing more to follow <==", err=True)
        return None
    except ConduitError:
        return following  # mid-rollout no revision may be serving for a moment: look again later
