"""`conduit ls`: every local deployment, its state, serving revision and endpoint."""
from __future__ import annotations

import click

from conduit.cli.status import table


@click.command("ls")
def command() -> int:
    """List local deployments."""
    from conduit.targets import local

    statuses = local.statuses()
    if not statuses:
        click.echo("No deployments yet: conduit apply conduit.yaml")
        return 0
    rows = [("NAME", "STATE", "REVISION", "ENDPOINT", "BENTO")]
    for status in statuses:
        serving = status.serving
        rows.append(
            (
                status.record.name,
                status.state,
                str(serving.revision) if serving else "-",
                status.record.endpoint or "-",
                serving.tag if serving else "-",
            )
        )
    click.echo(table(rows))
    return 0
