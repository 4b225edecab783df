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
from typing import Any, Optional

import click


@click.command("apply")
@click.argument("paths", nargs=-1, metavar="[CONDUIT_YAML]...", type=click.Path(path_type=Path))
@click.option("--target", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True)
@click.option("--namespace", default=None, help="Kubernetes namespace (kubernetes target).")
@click.option("--context", "kube_context", default=None, help="kubeconfig context (kubernetes target).")
@click.option("--flavor", default="serverless", show_default=True, help="serverless (KServe/Knative) or raw.")
@click.option("--image", default=None, help="A prebuilt image for the kubernetes target.")
@click.option("--changed-since", default=None, metavar="REF", help="Only manifests changed since git REF.")
def command(
    paths: tuple[Path, ...],
    target: str,
    namespace: Optional[str],
    kube_context: Optional[str],
    flavor: str,
    image: Optional[str],
    changed_since: Optional[str],
) -> int:
    """Deploy CONDUIT_YAML (default ./conduit.yaml) and print its endpoint.

    With --changed-since, every manifest under the given paths (default: the current folder)
    that changed since REF is applied, and deployments whose manifest was removed are deleted.
    """
    deployer = Deployer(target, namespace, kube_context, flavor, image)
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
    from conduit.cli.common import load_warned  # pydantic: imported after the standby started

    manifest, warnings = load_warned(path, target, flavour)
    click.echo(f"✅ Validated {path}")
    return manifest, warnings


class Deployer:
    def __init__(self, target: str, namespace: Optional[str], kube_context: Optional[str], flavor: str, image: Optional[str]):
        self.target = target
        self.kubernetes_options: dict[str, Any] = {"namespace": namespace, "context": kube_context, "flavor": flavor, "image": image}

    def apply(self, path: Path) -> None:
        if self.target == "kubernetes":
            from conduit.targets import kubernetes

            manifest, _warnings = validated(path, self.target, self.kubernetes_options["flavor"])
            click.echo(f"🌍 Endpoint: {kubernetes.apply(manifest, **self.kubernetes_options)}")
            return
        from conduit.targets import local

        # Started before validating: the next revision's supervisor imports BentoML meanwhile.
        with local.next_revision_standby() as standby:
            manifest, warnings = validated(path, self.target)
            where = str(Path(path).resolve())
            local.apply(manifest, progress=click.echo, manifest_path=where, standby=standby, warnings=warnings)

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
        if self.target == "kubernetes":
            from conduit.targets import kubernetes

            remove = getattr(kubernetes, "delete", None)
            if remove is None:
                click.echo(f"⚠️  {name}: deleting from Kubernetes is not supported here; remove it with kubectl")
                return
            remove(name, namespace=self.kubernetes_options["namespace"], context=self.kubernetes_options["context"])
            return
        from conduit.store import Store
        from conduit.targets import local

        if Store().deployment(name) is None:
            click.echo(f"· {name} is not deployed here; nothing to delete")
            return
        local.delete(name, progress=click.echo)
