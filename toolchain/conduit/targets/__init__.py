"""Where a deployment runs: one small interface, so that commands never compare target names.

    target = targets.get("kubernetes", namespace="team-a")
    endpoint = target.apply(manifest, manifest_path=..., warnings=..., progress=click.echo)

`get(name, **options)` builds the target; an option given (not None) that the target does not
take is a UsageError naming the target that takes it, so `--namespace` on the local target is
refused rather than ignored. `Target` holds every operation a command asks for; one a target
does not offer raises a one-line UsageError saying what to do instead (`unsupported`).

The targets themselves live apart and are imported only by `get`, so importing this package
(as `conduit validate` does, through `targets.honoured`) imports neither BentoML nor kubectl code:
`local_target.LocalTarget` (the module functions of `conduit.targets.local`) and
`kubernetes.target.KubernetesTarget` (`conduit.targets.kubernetes`).
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

from conduit.errors import UsageError

Progress = Callable[[str], None]
DEFAULT = "local"
# target name -> ("module:class", the keyword options its constructor takes)
_TARGETS = {
    "local": ("conduit.targets.local_target:LocalTarget", ()),
    "kubernetes": ("conduit.targets.kubernetes.target:KubernetesTarget", ("namespace", "context", "flavor", "image")),
}
NAMES = tuple(_TARGETS)


class Target:
    """What the commands ask of a target. Each operation here says, by default, that this target
    does not offer it; a target overrides the ones it does."""

    name = ""

    def apply(
        self,
        manifest: Any,
        *,
        manifest_path: Optional[str] = None,
        warnings: Sequence[str] = (),
        progress: Progress = print,
        api_key: Optional[str] = None,
    ) -> str:
        """Deploy `manifest` and return its endpoint URL."""
        self.unsupported("apply", "choose another --target")

    def delete(self, name: str, progress: Progress = print) -> None:
        self.unsupported("delete", "remove it with the tools of that target")

    def rollback(self, name: str, to: Optional[int] = None, progress: Progress = print) -> str:
        """Serve an earlier revision again; returns the endpoint URL."""
        self.unsupported("rollback", "apply the earlier conduit.yaml again")

    def log_path(self, name: str, revision: Optional[int] = None) -> Path:
        self.unsupported("logs", "read the logs with the tools of that target")

    def status(self, name: str) -> Any:
        self.unsupported("status", "ask that target's own tools")

    def statuses(self) -> list[Any]:
        self.unsupported("ls", "ask that target's own tools")

    def render(self, manifest: Any, out: Path, progress: Progress = print) -> list[Path]:
        """Write what this target deploys into `out`; returns the paths written."""
        self.unsupported("render", "use `conduit render --target local` for the build context")

    def unsupported(self, operation: str, instead: str) -> NoReturn:
        raise UsageError(f"`conduit {operation}` is not supported on the {self.name} target: {instead}")


def get(name: str = DEFAULT, **options: Any) -> Target:
    """The target called `name`, with the options that were given (None means not given)."""
    if name not in _TARGETS:
        raise UsageError(f"unknown target {name!r}: use one of {', '.join(NAMES)}")
    where, takes = _TARGETS[name]
    given = {option: value for option, value in options.items() if value is not None}
    for option in given:
        if option not in takes:
            raise UsageError(f"--{option} is an option of the {_taking(option)} target, not of the {name} target")
    module, class_name = where.split(":")
    return getattr(importlib.import_module(module), class_name)(**given)


def _taking(option: str) -> str:
    return next((name for name, (_, takes) in _TARGETS.items() if option in takes), "other")
