"""`conduit render conduit.yaml [--out bentos/] [--target local|kubernetes]`.

local (default): writes the BentoML build context `<out>/<name>/` (service.py, bentofile.yaml,
conduit.lock.json, requirements.txt, the runtime code and the artifacts). `--out` defaults to
`bentos/` in the current directory, where the examples' glue is committed.
kubernetes: writes the KServe/Kubernetes manifests for the deployment into `<out>` instead, for
Argo CD or Flux to apply.
"""
from __future__ import annotations

from pathlib import Path

import click

from conduit.cli.common import load_manifest


@click.command("render")
@click.argument(
    "manifest_paths", metavar="CONDUIT_YAML|FOLDER...", nargs=-1, required=True,
    type=click.Path(path_type=Path),
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("bentos"),
              show_default=True, help="Folder to write into (one sub-folder per deployment for local).")
@click.option("--target", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True)
@click.option("--flavor", type=click.Choice(["serverless", "raw"]), default="serverless", show_default=True,
              help="kubernetes only: KServe serverless (scale to zero) or raw Deployment + HPA.")
@click.option("--image", default=None, help="kubernetes only: the image reference the pods run.")
def command(manifest_paths: tuple[Path, ...], out_dir: Path, target: str, flavor: str, image: str | None) -> int:
    """Render deployments to a build context (local) or Kubernetes manifests."""
    for manifest_path in manifest_paths:
        if target == "kubernetes":  # what the cluster will not do is said here too, not only at validate
            manifest = load_manifest(manifest_path, target, flavor)
            from conduit.targets.kubernetes import render_to

            for written in render_to(manifest, out_dir, flavor=flavor, image=image):
                click.echo(f"✅ Wrote {written}")
            continue
        manifest = load_manifest(manifest_path)
        from conduit.render import render

        result = render(manifest, out_dir)
        click.echo(f"✅ Rendered {manifest.name} to {result.path} (version {result.version})")
    return 0
