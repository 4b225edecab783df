"""`conduit plan [--changed-since REF] [--format text|json|markdown] [PATHS]...`

What `conduit apply --changed-since REF` would do for every manifest under PATHS (default: the
current folder): create, update, delete or leave alone, and why. Markdown is meant for a pull
request's job summary (`>> $GITHUB_STEP_SUMMARY`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click


@click.command("plan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--changed-since", default=None, metavar="REF", help="Git commit, branch or tag last deployed.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
    help="text for people, json for scripts, markdown for a pull request summary.",
)
def command(paths: tuple[Path, ...], changed_since: Optional[str], fmt: str) -> int:
    """Show which deployments a git change creates, updates or deletes."""
    from conduit.gitops.plan import plan
    from conduit.gitops.report import render

    entries = plan(list(paths), changed_since=changed_since)
    click.echo(render(entries, fmt, changed_since), nl=False)
    return 0
