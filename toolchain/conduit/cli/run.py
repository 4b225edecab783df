"""`conduit run conduit.yaml --data '[[...]]'`: the flow in this process, no server.

Prints exactly the `result` list the HTTP endpoint returns for the same request, as one line of
JSON. `--data` takes JSON text, `@file.json`, or `-` for stdin; the body may be the seed's array of
data points or `{"data": [...], "parameters": {...}}` as the endpoint accepts. `--file NAME=PATH`
(repeatable) adds an uploaded file as a multipart request's field NAME would: the `pre` hooks get
it in `files` (see conduit.runtimes.hooks); with files, `--data` may be left out.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

import click

from conduit.cli.common import load_manifest, parse_json, read_data
from conduit.errors import BadRequest, UsageError
from conduit.runtimes.uploads import UploadedFile, as_upload
from conduit.serving.contract import PredictRequest, from_document


@click.command("run")
@click.argument("manifest_path", metavar="CONDUIT_YAML|FOLDER", type=click.Path(path_type=Path))
@click.option("--data", "data_arg", default=None, help="JSON request body, @file.json, or - for stdin.")
@click.option("--file", "file_args", multiple=True, metavar="NAME=PATH", help="An uploaded file for the pre hooks (repeatable).")
def command(manifest_path: Path, data_arg: Optional[str], file_args: tuple[str, ...]) -> int:
    """Run the flow in-process on DATA (and files) and print the result list as JSON."""
    from conduit.runtimes.flow import Flow

    if data_arg is None and not file_args:
        raise UsageError("give the request: --data '[[...]]' and/or --file NAME=PATH")
    request = parse_request(parse_json(read_data(data_arg))) if data_arg is not None else PredictRequest(None)
    request.files = dict(parse_file(arg) for arg in file_args)
    manifest = load_manifest(manifest_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        flow = Flow.load(manifest)
    # stdout carries the JSON result alone; every warning is one line on stderr
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(json.dumps(flow.predict(request.data, parameters=request.parameters or {}, files=request.files)))
    return 0


def parse_file(arg: str) -> tuple[str, UploadedFile]:
    """`NAME=PATH` -> (NAME, the file as a hook receives it)."""
    name, separator, path = arg.partition("=")
    if not separator or not name or not path:
        raise UsageError(f"--file {arg}: expected NAME=PATH, e.g. --file table=rows.csv")
    return name, as_upload(name, Path(path))


def parse_request(document) -> PredictRequest:
    """The body as the endpoint reads it (the same parser), so `run` accepts what POST accepts."""
    try:
        return from_document(document)
    except BadRequest as exc:
        raise UsageError(f"--data: {exc}") from None
