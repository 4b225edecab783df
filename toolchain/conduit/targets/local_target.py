"""The local target behind the `conduit.targets.Target` interface: a thin adapter over the module
functions of `conduit.targets.local`, whose signatures stay that module's own. It imports that
module (and with it the store and the serving code) only when an operation runs.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from conduit.targets import Progress, Target


def _local():
    from conduit.targets import local

    return local


class LocalTarget(Target):
    name = "local"

    def __init__(self) -> None:
        self._store: Any = None  # opened once for a log follower, which asks several times a second

    def apply(
        self,
        manifest: Any,
        *,
        manifest_path: Optional[str] = None,
        warnings: Sequence[str] = (),
        progress: Progress = print,
        api_key: Optional[str] = None,
    ) -> str:
        deployment = _local().apply(manifest, api_key=api_key, progress=progress, manifest_path=manifest_path, warnings=warnings)
        return deployment.endpoint

    def delete(self, name: str, progress: Progress = print) -> None:
        _local().delete(name, progress=progress)

    def rollback(self, name: str, to: Optional[int] = None, progress: Progress = print) -> str:
        return _local().rollback(name, to, progress=progress).endpoint

    def log_path(self, name: str, revision: Optional[int] = None) -> Path:
        if self._store is None:
            from conduit.store import Store

            self._store = Store()
        return _local().log_path(name, revision, self._store)

    def status(self, name: str) -> Any:
        return _local().status(name)

    def statuses(self) -> list[Any]:
        return _local().statuses()

    def render(self, manifest: Any, out: Path, progress: Progress = print) -> list[Path]:
        """The BentoML build context `<out>/<name>/`."""
        from conduit.render import render

        result = render(manifest, out)
        progress(f"✅ Rendered {manifest.name} to {result.path} (version {result.version})")
        return [result.path]
