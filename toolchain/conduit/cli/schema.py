"""`conduit schema [--check] [--out PATH]`: write conduit.schema.json, or check it has not drifted."""

from __future__ import annotations

from pathlib import Path

import click

from conduit.manifest.dump import SCHEMA_FILE
from conduit.manifest.schema import schema_is_current, schema_text, write_schema


@click.command("schema")
@click.option("--check", is_flag=True, help="Exit 1 if the file differs from what conduit would write.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path(SCHEMA_FILE),
    show_default=True,
    help="Where the schema lives; `-` prints it.",
)
def command(check: bool, out: Path) -> int:
    """Write the JSON Schema of conduit.yaml (generated from the manifest model)."""
    if str(out) == "-":
        click.echo(schema_text(), nl=False)
        return 0
    if check:
        if schema_is_current(out):
            click.echo(f"{out} is up to date")
            return 0
        click.echo(f"{out} is out of date with the manifest model; run `conduit schema --out {out}`", err=True)
        return 1
    write_schema(out)
    click.echo(f"wrote {out}")
    return 0
