"""`conduit rollback NAME [--to REVISION]`: serve an earlier revision's Bento again (as a new
revision, on the same endpoint). Without --to: the latest archived revision with a different Bento."""
from __future__ import annotations

from typing import Optional

import click


@click.command("rollback")
@click.argument("name")
@click.option("--to", "to_revision", type=int, default=None, help="The revision to serve again.")
def command(name: str, to_revision: Optional[int]) -> int:
    """Roll NAME back to an earlier revision."""
    from conduit import targets

    targets.get("local").rollback(name, to_revision, progress=click.echo)
    return 0
