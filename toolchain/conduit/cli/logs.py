"""`conduit logs NAME [-n N] [--revision R]`: the last lines of a revision's server log."""
from __future__ import annotations

from typing import Optional

import click


@click.command("logs")
@click.argument("name")
@click.option("-n", "--lines", default=50, show_default=True, type=click.IntRange(min=1), help="How many lines.")
@click.option("--revision", type=int, default=None, help="A revision other than the serving one.")
def command(name: str, lines: int, revision: Optional[int]) -> int:
    """Print the end of the serving (or given) revision's log."""
    from conduit.targets import local
    from conduit.targets.processes import log_tail

    click.echo(log_tail(local.log_path(name, revision), lines))
    return 0
