"""What a built bento knows about itself: `conduit.lock.json` next to `service.py`.

The lock holds the manifest with every path rewritten to the bento layout (`artifacts/...`,
`hooks/...`), so the Flow loads from inside the bento wherever it runs.
"""
from __future__ import annotations

import json
from pathlib import Path

LOCK_FILE = "conduit.lock.json"


def read_lock(bento_dir: Path) -> dict:
    return json.loads((Path(bento_dir) / LOCK_FILE).read_text(encoding="utf-8"))


def load_manifest(bento_dir: Path):
    """The deployment's Manifest, with relative paths resolving inside the bento."""
    from conduit.manifest import Manifest

    lock = read_lock(bento_dir)
    return Manifest.model_validate(lock["manifest"]).with_base_dir(bento_dir)
