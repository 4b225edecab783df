"""`conduit build conduit.yaml [--force] [--image REGISTRY/NAME]`: a Bento in the local store.

The Bento's version is a content hash of its build context: building again with nothing changed
reuses it. `--force` (or `force_rebuild: true`) builds again anyway. `--image` also makes an OCI
image of it (`bentoml containerize`) and prints the reference.
"""
from __future__ import annotations

from pathlib import Path

import click

from conduit.cli.common import load_manifest


@click.command("build")
@click.argument("manifest_path", metavar="CONDUIT_YAML|FOLDER", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild even when nothing changed.")
@click.option("--image", default=None, metavar="REGISTRY/NAME", help="Also build an OCI image of the Bento.")
def command(manifest_path: Path, force: bool, image: str | None) -> int:
    """Validate, render and build a Bento; print its tag."""
    from conduit.build import build

    manifest = load_manifest(manifest_path)
    click.echo(f"✅ Validated {manifest_path}")
    result = build(manifest, force=force, progress=click.echo)
    if image:
        from conduit.image import containerize

        click.echo(f"✅ Image {containerize(result.tag, image)}")
    click.echo(f"🍱 Bento: {result.tag}")
    return 0

