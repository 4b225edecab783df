"""`conduit status NAME [--json]`: the endpoint, what serves it, the manifest it came from, its
warnings (fields the target does not honour), and every revision with its state.

`--json` prints one object with stable keys (see `document`); `conduit ls --json` lists the same
summary per deployment. `endpoint` is null until a revision serves (a failed first deploy has none).

The state is what the gateway reports: `serving` (a replica is ready), `scaled to zero` (no
replica runs; the next request starts one; `scaling to zero` while the last ones finish their
requests), `starting` (a replica is starting, maybe after a
crash: then it says why it is failing), `failed` (no revision ever served), `down (...)` (the
gateway is not running), and `serving (degraded: ...)` when logs and metrics cannot be written (a
full disk). Replicas ready/desired and the last request time come from the gateway too. Exit code 0
while it serves (degraded or scaled to zero too) or was never started, 1 otherwise.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import click


@click.command("status")
@click.argument("name")
@click.option("--endpoint", "endpoint_only", is_flag=True, help="Print only the endpoint URL (for scripts and curl).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def command(name: str, endpoint_only: bool, as_json: bool) -> int:
    """Show a deployment and its revisions."""
    from conduit.targets import local

    status = local.status(name)
    if endpoint_only:
        click.echo(status.endpoint or "")
    elif as_json:
        click.echo(json.dumps(document(status), indent=2))
    else:
        click.echo(text(status))
    if endpoint_only:
        return 0 if status.endpoint else 1
    return 0 if status.serves or status.state == "stopped" else 1


def summary(status) -> dict:
    """What `ls --json` shows per deployment; `status --json` adds to it."""
    serving = status.serving
    return {
        "name": status.record.name,
        "state": status.state,
        "degraded": status.degraded if status.serves else None,
        "endpoint": status.endpoint,
        "revision": serving.revision if serving else None,
        "bento": serving.tag if serving else None,
        "replicas": {"ready": status.replicas_ready, "desired": status.replicas_desired},
        "last_request_at": iso_time(status.last_request_at),
        "manifest_path": status.manifest_path,
        "warnings": list(status.warnings),
    }


def document(status) -> dict:
    serving = status.serving
    return {
        **summary(status),
        "serving": {"revision": serving.revision, "bento": serving.tag, "settings": serving.settings} if serving else None,
        "gateway": {"port": status.gateway_port, "failing": status.failing},
        "revisions": [revision_document(revision) for revision in status.revisions],
    }


def revision_document(revision) -> dict:
    return {
        "revision": revision.revision,
        "state": revision.state,
        "bento": revision.tag,
        "created_at": revision.created_at,
        "note": revision.note,
        "manifest_path": revision.manifest_path,
        "warnings": list(revision.warnings),
    }


def text(status) -> str:
    serving = status.serving
    lines = [
        f"name:      {status.record.name}",
        f"state:     {status.state}",
        f"endpoint:  {status.endpoint or '-'}",
    ]
    if serving is not None:
        lines.append(f"revision:  {serving.revision} ({serving.tag})")
        lines.append(f"replicas:  {status.replicas_ready} ready, {status.replicas_desired} desired ({scaling_text(serving.settings)})")
        last = iso_time(status.last_request_at) or ("none yet" if status.gateway_port else "unknown (the gateway is not running)")
        lines.append(f"last request: {last}")
    if status.manifest_path:
        lines.append(f"manifest:  {status.manifest_path}")
    if status.warnings:
        lines += ["warnings:"] + [f"  {warning}" for warning in status.warnings]
    return "\n".join(lines + ["", revision_table(status.revisions)])


def scaling_text(settings: dict) -> str:
    if not settings:
        return "scaling unknown: applied by an older conduit"
    return (
        f"min {settings.get('min_replicas')}, max {settings.get('max_replicas')}, "
        f"{settings.get('replica_concurrency')} in flight per replica, cooldown {settings.get('cooldown_s'):g}s"
    )


def iso_time(stamp) -> str | None:
    if stamp is None:
        return None
    import datetime as dt

    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).isoformat(timespec="seconds")


def revision_table(revisions) -> str:
    rows = [("REVISION", "STATE", "BENTO", "CREATED", "NOTE")]
    rows += [(str(r.revision), r.state, r.tag, r.created_at, r.note) for r in revisions]
    return table(rows)


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
