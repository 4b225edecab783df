"""`conduit delete NAME [--target local|kubernetes]`: remove a deployment.

Local: stop every process of the deployment and forget it (its logs and built Bentos stay).
Kubernetes: delete the objects conduit applied for NAME in --namespace, else in the namespace of
the default project (a name alone does not say which project it was in).
"""
from __future__ import annotations

from typing import Optional

import click

from conduit import targets
from conduit.cli import target_options as options


@click.command("delete")
@click.argument("name")
@options.target()
@options.namespace
@options.context
def command(name: str, target: str, namespace: Optional[str], kube_context: Optional[str]) -> int:
    """Remove the deployment NAME."""
    targets.get(target, namespace=namespace, context=kube_context).delete(name, progress=click.echo)
    return 0
