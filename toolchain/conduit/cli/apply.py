"""`conduit apply [CONDUIT_YAML...] [--target local|kubernetes] [--changed-since REF]`.

Each field the target does not honour is a warning on stderr (see `conduit.targets.honoured`).
Local (the default): validate, build, serve as the next revision of its name on 127.0.0.1, print
the endpoint; nothing changed means nothing restarts (see `conduit.targets.local`). Kubernetes:
server-side apply of the rendered InferenceService (see `conduit.targets.kubernetes`).
`--changed-since REF` applies only the manifests `conduit plan` finds changed since REF, and
removes deployments whose manifest was deleted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from conduit import targets
from conduit.cli import target_options as options
from conduit.targets import Target


@click.command("apply")
@click.argument("paths", nargs=-1, metavar="[CONDUIT_YAML]...", type=click.Path(path_type=Path))
@options.target()
@options.namespace
@options.context
@options.flavor
@options.image
@click.option("--changed-since", default=None, metavar="REF", help="Only manifests changed since git REF.")
def command(
    paths: tuple[Path, ...],
    target: str,
    namespace: Optional[str],
    kube_context: Optional[str],
    flavor: Optional[str],
    image: Optional[str],
    changed_since: Optional[str],
) -> int:
    """Deploy CONDUIT_YAML (default ./conduit.yaml) and print its endpoint.

    With --changed-since, every manifest under the given paths (default: the current folder)
    that changed since REF is applied, and deployments whose manifest was removed are deleted.
    """
    deployer = Deployer(targets.get(target, namespace=namespace, context=kube_context, flavor=flavor, image=image), flavor)
    if changed_since is None:
        for path in paths or (Path("conduit.yaml"),):
            deployer.apply(path)
        return 0
    from conduit.gitops.plan import plan

    for entry in plan(list(paths), changed_since=changed_since):  # no paths: the current folder
        deployer.follow(entry)
    return 0


def validated(path: Path, target: str, flavour: Optional[str] = None):
    """(manifest, warnings): its warnings, among them the fields `target` does not honour, are
    printed on stderr, one a line, and kept with the revision for `conduit status`."""
    from conduit.cli.common import load_warned  # pydantic: imported once the target's warm-up started

    manifest, warnings = load_warned(path, target, flavour)
    click.echo(f"✅ Validated {path}")
    return manifest, warnings


class Deployer:
    def __init__(self, target: Target, flavour: Optional[str] = None):
        self.target, self.flavour = target, flavour

    def apply(self, path: Path) -> None:
        manifest, warnings = validated(path, self.target.name, self.flavour)
        where = str(Path(path).resolve())
        endpoint = self.target.apply(manifest, manifest_path=where, warnings=warnings, progress=click.echo)
        click.echo(f"🌍 Endpoint: {endpoint}")

    def follow(self, entry) -> None:
        """Carry out one line of a plan: create/update apply, delete removes, unchanged skips."""
        if entry.action in ("create", "update"):
            click.echo(f"▶ {entry.action} {entry.name}: {entry.reason}")
            self.apply(Path(entry.manifest_path))
        elif entry.action == "delete":
            click.echo(f"▶ delete {entry.name}: {entry.reason}")
            self.delete(entry.name)
        else:
            click.echo(f"· {entry.name} unchanged")

    def delete(self, name: str) -> None:
        from conduit.store import DeploymentNotFound

        try:
            self.target.delete(name, progress=click.echo)
        except DeploymentNotFound:
            click.echo(f"· {name} is not deployed here; nothing to delete")
