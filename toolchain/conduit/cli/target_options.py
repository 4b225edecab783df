"""The `--target` option and the kubernetes target's options, written once for every command
that takes them (apply, render, validate, delete). Each option's value goes to
`conduit.targets.get`, which refuses one the chosen target does not take."""
from __future__ import annotations

from typing import Callable, TypeVar

import click

from conduit import targets
from conduit.targets.kubernetes import FLAVORS

F = TypeVar("F", bound=Callable[..., object])


def target(help_text: str = "Where the deployment runs.") -> Callable[[F], F]:
    return click.option(
        "--target", type=click.Choice(targets.NAMES), default=targets.DEFAULT, show_default=True, help=help_text
    )


namespace = click.option(
    "--namespace", default=None, help="kubernetes: the namespace (default: the manifest's project)."
)
context = click.option("--context", "kube_context", default=None, help="kubernetes: the kubeconfig context.")
flavor = click.option(
    "--flavor", type=click.Choice(FLAVORS), default=None,
    help="kubernetes: serverless (KServe on Knative, scale to zero; the default) or raw (Deployment + HPA).",
)
image = click.option("--image", default=None, help="kubernetes: a prebuilt image reference for the pods.")
