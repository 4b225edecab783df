"""`conduit status NAME`: the endpoint, what serves it, and every revision with its state."""
from __future__ import annotations

import click


@click.command("status")
@click.argument("name")
@click.option("--endpoint", "endpoint_only", is_flag=True, help="Print only the endpoint URL (for scripts and curl).")
def command(name: str, endpoint_only: bool) -> int:
    """Show a deployment and its revisions."""
    from conduit.targets import local

    status = local.status(name)
    record = status.record
    if endpoint_only:
        click.echo(record.endpoint or "")
        return 0 if record.endpoint else 1
    click.echo(f"name:      {record.name}")
    click.echo(f"state:     {status.state}")
    click.echo(f"endpoint:  {record.endpoint or '-'}")
    if status.serving is not None:
        click.echo(f"revision:  {status.serving.revision} ({status.serving.tag}, backend port {status.serving.port}, pid {status.serving.pid})")
    if record.manifest_path:
        click.echo(f"manifest:  {record.manifest_path}")
    click.echo("")
    click.echo(revision_table(status.revisions))
    return 0 if status.state in ("serving", "stopped") else 1


def revision_table(revisions) -> str:
    rows = [("REVISION", "STATE", "BENTO", "CREATED", "NOTE")]
    rows += [(str(r.revision), r.state, r.tag, r.created_at, r.note) for r in revisions]
    return table(rows)


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
