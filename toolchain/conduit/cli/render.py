"""`conduit render conduit.yaml [--out bentos/] [--target local|kubernetes]`.

local (default): writes the BentoML build context `<out>/<name>/` (service.py, bentofile.yaml,
conduit.lock.json, requirements.txt, the runtime code and the artifacts). `--out` defaults to
`bentos/` in the current directory, where the examples' glue is committed.
kubernetes: writes the KServe/Kubernetes manifests for the deployment into `<out>` instead, for
Argo CD or Flux to apply; their namespace is the manifest's project unless --namespace is given.
What the target does not honour is warned about on stderr here too, not only at validate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from conduit import targets
from conduit.cli import target_options as options
from conduit.cli.common import load_manifest


@click.command("render")
@click.argument(
    "manifest_paths", metavar="CONDUIT_YAML|FOLDER...", nargs=-1, required=True,
    type=click.Path(path_type=Path),
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("bentos"),
              show_default=True, help="Folder to write into (one sub-folder per deployment for local).")
@options.target()
@options.flavor
@options.image
@options.namespace
def command(
    manifest_paths: tuple[Path, ...], out_dir: Path, target: str, flavor: Optional[str], image: Optional[str],
    namespace: Optional[str],
) -> int:
    """Render deployments to a build context (local) or Kubernetes manifests."""
    chosen = targets.get(target, flavor=flavor, image=image, namespace=namespace)
    for manifest_path in manifest_paths:
        manifest = load_manifest(manifest_path, target, flavor)
        chosen.render(manifest, out_dir, progress=click.echo)
    return 0
