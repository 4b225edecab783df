"""`conduit run conduit.yaml --data '[[...]]'`: the flow in this process, no server.

Prints exactly the `result` list the HTTP endpoint returns for the same request, as one line of
JSON. `--data` takes JSON text, `@file.json`, or `-` for stdin; the body may be the seed's array of
data points or `{"data": [...], "parameters": {...}}` as the endpoint accepts.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

from conduit.cli.common import load_manifest, parse_json, read_data
from conduit.errors import BadRequest, UsageError
from conduit.serving.contract import PredictRequest, from_document


@click.command("run")
@click.argument("manifest_path", metavar="CONDUIT_YAML|FOLDER", type=click.Path(path_type=Path))
@click.option("--data", "data_arg", required=True, help="JSON request body, @file.json, or - for stdin.")
def command(manifest_path: Path, data_arg: str) -> int:
    """Run the flow in-process on DATA and print the result list as JSON."""
    from conduit.runtimes.flow import Flow

    request = parse_request(parse_json(read_data(data_arg)))
    manifest = load_manifest(manifest_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        flow = Flow.load(manifest)
    # stdout carries the JSON result alone; every warning is one line on stderr
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(json.dumps(flow.predict(request.data, parameters=request.parameters or {})))
    return 0


def parse_request(document) -> PredictRequest:
    """The body as the endpoint reads it (the same parser), so `run` accepts what POST accepts."""
    try:
        return from_document(document)
    except BadRequest as exc:
        raise UsageError(f"--data: {exc}") from None
