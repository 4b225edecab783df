"""`conduit run conduit.yaml --data '[[...]]'`: the flow in this process, no server.

Prints exactly the `result` list the HTTP endpoint returns for the same request, as one line of
JSON. `--data` takes JSON text, `@file.json`, or `-` for stdin; the body may be the seed's array of
data points or `{"data": [...], "parameters": {...}}` as the endpoint accepts.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from conduit.errors import UsageError
from conduit.manifest import load_with_warnings


@click.command("run")
@click.argument("manifest_path", metavar="CONDUIT_YAML|FOLDER", type=click.Path(path_type=Path))
@click.option("--data", "data_arg", required=True, help="JSON request body, @file.json, or - for stdin.")
def command(manifest_path: Path, data_arg: str) -> int:
    """Run the flow in-process on DATA and print the result list as JSON."""
    from conduit.runtimes.flow import Flow

    data, parameters = split_request(parse_json(read_data(data_arg)))
    manifest, problems = load_with_warnings(manifest_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        flow = Flow.load(manifest)
    # stdout carries the JSON result alone; every warning is one line on stderr
    for problem in problems:
        click.echo(str(problem), err=True)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(json.dumps(flow.predict(data, parameters=parameters)))
    return 0


def read_data(data_arg: str) -> str:
    if data_arg == "-":
        return sys.stdin.read()
    if data_arg.startswith("@"):
        path = Path(data_arg[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--data {data_arg}: cannot read {path}: {exc.strerror or exc}") from exc
    return data_arg


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def split_request(body: Any) -> tuple[Any, dict]:
    """(data, parameters) from a body that is either the data itself or {"data", "parameters"}."""
    if isinstance(body, dict) and "data" in body:
        unknown = set(body) - {"data", "parameters"}
        if unknown:
            raise UsageError(f"unknown request keys {sorted(unknown)}: expected 'data' and optional 'parameters'")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise UsageError("'parameters' must be a JSON object")
        return body["data"], parameters
    return body, {}
