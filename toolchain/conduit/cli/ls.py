"""`conduit ls [--json]`: every local deployment, its state, serving revision and endpoint.

A deployment whose only revision failed is kept (its logs and `status` say why) and listed as
`failed` with no endpoint, as BentoML and Cerebrium list a failed deployment. `--json` prints a
list of the summaries `conduit status --json` starts with.
"""
from __future__ import annotations

import json

import click

from conduit.cli.status import summary, table


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def command(as_json: bool) -> int:
    """List local deployments."""
    from conduit.targets import local

    summaries = [summary(status) for status in local.statuses()]
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
    elif not summaries:
        click.echo("No deployments yet: conduit apply conduit.yaml")
    else:
        click.echo(table([HEADER] + [row(item) for item in summaries]))
    return 0


HEADER = ("NAME", "STATE", "REPLICAS", "REVISION", "ENDPOINT", "BENTO", "WARNINGS")


def row(item: dict) -> tuple[str, ...]:
    replicas = f"{item['replicas']['ready']}/{item['replicas']['desired']}" if item["revision"] else None
    shown = [item["name"], item["state"], replicas, item["revision"], item["endpoint"], item["bento"], len(item["warnings"]) or None]
    return tuple("-" if value is None else str(value) for value in shown)
