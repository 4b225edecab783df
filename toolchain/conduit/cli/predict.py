"""`conduit predict NAME --data '[[...]]'|@file.json|-`: call a local deployment's endpoint.

The key comes from CONDUIT_API_KEY (the one shown at first apply, or the one you set). Prints the
response JSON; exits 1 unless the endpoint answered 200.
"""
from __future__ import annotations

import json
import os

import click

from conduit.cli.common import parse_json, read_data
from conduit.errors import UsageError


@click.command("predict")
@click.argument("name")
@click.option("--data", "data_arg", required=True, help="JSON request body, @file.json, or - for stdin.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the answer.")
def command(name: str, data_arg: str, timeout: float) -> int:
    """POST DATA to NAME's endpoint and print the response."""
    from conduit.client import model_api_request
    from conduit.targets import local

    key = os.environ.get("CONDUIT_API_KEY")
    if not key:
        raise UsageError("set CONDUIT_API_KEY to the deployment's API key (shown once at the first apply)")
    endpoint = local.status(name).endpoint  # the gateway's URL for it, once a revision serves
    if endpoint is None:
        raise UsageError(f"{name} has never served; see: conduit status {name}")
    response = model_api_request(endpoint, parse_json(read_data(data_arg)), key, timeout=timeout)
    click.echo(json.dumps(response["data"]))
    return 0 if response["status_code"] == 200 else 1
