"""`conduit delete NAME`: stop every process of a local deployment and forget it."""
from __future__ import annotations

import click


@click.command("delete")
@click.argument("name")
def command(name: str) -> int:
    """Stop and remove a local deployment (its logs and built Bentos stay)."""
    from conduit.targets import local

    local.delete(name, progress=click.echo)
    return 0
