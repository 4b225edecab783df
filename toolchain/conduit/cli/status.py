"""`conduit status NAME [--json]`: the endpoint, what serves it, the manifest it came from, its
warnings (fields the target does not honour), and every revision with its state.

`--json` prints one object with stable keys (see `document`); `conduit ls --json` lists the same
summary per deployment. `endpoint` is null until a revision serves (a failed first deploy has none).

The state is checked, not just read from the store: `serving` means the server answers /readyz
now; `serving (degraded: ...)` that it answers but cannot write its logs and metrics (a full disk;
`degraded` in the JSON says why); `down (...)` that it does not answer, and why. Exit code 0 while
it serves (degraded too) or was never started, 1 otherwise.
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
        "manifest_path": status.manifest_path,
        "warnings": list(status.warnings),
    }


def document(status) -> dict:
    serving = status.serving
    return {
        **summary(status),
        "serving": {"revision": serving.revision, "bento": serving.tag, "port": serving.port, "pid": serving.pid}
        if serving
        else None,
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
        lines.append(f"revision:  {serving.revision} ({serving.tag}, backend port {serving.port}, pid {serving.pid})")
    if status.manifest_path:
        lines.append(f"manifest:  {status.manifest_path}")
    if status.warnings:
        lines += ["warnings:"] + [f"  {warning}" for warning in status.warnings]
    return "\n".join(lines + ["", revision_table(status.revisions)])


def revision_table(revisions) -> str:
    rows = [("REVISION", "STATE", "BENTO", "CREATED", "NOTE")]
    rows += [(str(r.revision), r.state, r.tag, r.created_at, r.note) for r in revisions]
    return table(rows)


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
