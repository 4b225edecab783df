"""`Conduit(...)`: the Python way to write a manifest, spelled as in the Cerebrium seed document.

    from conduit import Conduit, model_type, hardware
    c = Conduit(name="iris", flow=(model_type.SKLEARN, "model.pkl"), hardware=hardware.CPU)
    c.save("conduit.yaml"); c.run([[5.1, 3.5, 1.4, 0.2]]); c.deploy()

It builds the same `Manifest` the YAML loader builds, through the same phases, so the messages
are the same too. Relative paths are relative to the working directory at construction (the
manifest's `base_dir`). Hooks may be passed as functions defined in an importable .py file; they are
recorded as `file.py:function` relative to `base_dir`. The API key (argument or CONDUIT_API_KEY)
lives only on this object: it is never part of the Manifest, so never written to YAML.

Hooks defined in the user's own script: `run()` calls the very functions it was given, so it never
imports the script again. A served Bento has to import the file, and a script that builds a
Conduit at its top level (no `if __name__ == "__main__":` guard) would run again there; so
`Conduit(...)`, `run()` and `deploy()` refuse to run inside a hook file's import (the re-entry
guard in conduit.runtimes.hooks), and `deploy()` first imports such a script in a subprocess, so
that it fails before any build with the message saying what to do.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Optional

from conduit import paths, targets
from conduit.errors import UsageError
from conduit.manifest.dump import to_yaml
from conduit.manifest.loader import MANIFEST_NAME, build, load_with_warnings
from conduit.manifest.model import HOOK_KEYS, Batching, Manifest, PredictionLog, Stage, stage_list, stage_mapping
from conduit.manifest.names import DEFAULT_PROJECT
from conduit.manifest.problems import ManifestInvalid, Problem
from conduit.runtimes.hooks import HookFunctions, import_in_subprocess, refuse_reentry
from conduit.runtimes.uploads import as_uploads

API_KEY_ENV = "CONDUIT_API_KEY"


class Conduit:
    def __init__(
        self,
        name: str,
        api_key: Optional[str] = None,
        flow: Any = None,
        hardware: Any = None,
        project: str = DEFAULT_PROJECT,
        cpu: int = 2,
        memory: float = 8.0,
        cooldown: int = 60,
        min_replicas: int = 0,
        max_replicas: int = 2,
        replica_concurrency: Optional[int] = None,
        requirements_file: Optional[str | os.PathLike] = None,
        force_rebuild: bool = False,
        python_version: Optional[str] = None,
        batching: Optional[dict | Batching] = None,
        prediction_log: Optional[dict | PredictionLog] = None,
    ):
        refuse_reentry("`Conduit(...)`")  # first: inside a hook file's import, nothing may run
        base_dir = Path.cwd()
        stages, problems, functions = _python_flow(flow, base_dir)
        data = {
            "name": name,
            "project": project,
            "flow": stages,
            "hardware": hardware,
            "cpu": cpu,
            "memory": memory,
            "cooldown": cooldown,
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "replica_concurrency": replica_concurrency,
            "requirements_file": requirements_file,
            "force_rebuild": force_rebuild,
            "python_version": python_version,
            "batching": batching.model_dump() if isinstance(batching, Batching) else batching,
            "prediction_log": prediction_log.model_dump(exclude_none=True)
            if isinstance(prediction_log, PredictionLog)
            else prediction_log,
        }
        if flow is None:
            del data["flow"]  # so the message is "required key `flow` is missing"
        manifest, warnings = build(data, base_dir, problems=problems)
        self._adopt(manifest, warnings, api_key, source=None, functions=functions)

    def _adopt(
        self,
        manifest: Manifest,
        warnings: list[Problem],
        api_key: Optional[str],
        source: Optional[Path],
        functions: Optional[HookFunctions] = None,
    ) -> None:
        self._manifest = manifest
        self._functions = functions or {}  # the hook functions given, by (stage index, "pre"/"post")
        self.warnings = warnings
        self._api_key = api_key or os.environ.get(API_KEY_ENV)
        self._source = source  # the YAML this came from: deploy() never rewrites it

    @classmethod
    def from_yaml(cls, path: Path | str, api_key: Optional[str] = None) -> Conduit:
        refuse_reentry("`Conduit.from_yaml(...)`")
        manifest, warnings = load_with_warnings(path)
        conduit = cls.__new__(cls)
        conduit._adopt(manifest, warnings, api_key, source=Path(path))
        return conduit

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def api_key(self) -> Optional[str]:
        return self._api_key

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return f"Conduit(name={self._manifest.name!r}, base_dir='{self._manifest.base_dir}', api_key={key})"

    def to_yaml(self) -> str:
        return to_yaml(self._manifest)

    def save(self, path: Path | str | None = None) -> Path:
        """Write the manifest (never the API key) to `path`, default `<base_dir>/conduit.yaml`.

        Saving into another folder is allowed only when every relative path still resolves from
        there (the manifest is validated again against that folder, which becomes its base_dir);
        otherwise nothing is written and a UsageError says which paths broke. A folder that does not
        exist yet is created (a path without a suffix, such as `deploy/iris`, names a folder).
        """
        target = Path(path) if path is not None else self._manifest.base_dir / MANIFEST_NAME
        if target.is_dir() or (not target.suffix and not target.exists()):
            target = target / MANIFEST_NAME
        folder = target.parent.resolve()
        if folder != self._manifest.base_dir:
            self._manifest = self._rebased(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_yaml(), encoding="utf-8")
        return target

    def _rebased(self, folder: Path) -> Manifest:
        data = self._manifest.model_dump(mode="json", by_alias=True)
        try:
            return build(data, folder)[0]
        except ManifestInvalid as invalid:
            broken = "; ".join(str(problem) for problem in invalid.problems)
            raise UsageError(
                f"cannot save into {folder}: paths are relative to {self._manifest.base_dir}, "
                f"and from {folder}: {broken}"
            ) from None

    def run(self, data: Any = None, parameters: Optional[dict] = None, files: Optional[dict] = None) -> Any:
        """The flow in this process, no server: what the endpoint would return as `result`.

        `files` are what a multipart request would carry ({field: open file, bytes, path or
        (filename, file[, content_type])}); with files, `data` may be None. Hook functions given
        to Conduit(...) are called as they are, never re-imported."""
        refuse_reentry("`Conduit.run()`")
        from conduit.runtimes.flow import Flow

        flow = Flow.load(self._manifest, functions=self._functions)
        return flow.predict(data, parameters, as_uploads(files))

    def deploy(self, path: Path | str | None = None, target: str = targets.DEFAULT, **options: Any) -> str:
        """Save the manifest (unless it came from a YAML file and no path is given), build and
        serve it on `target` (its options as `conduit apply` takes them: namespace=, context=,
        flavor=, image= for kubernetes); returns the endpoint URL."""
        refuse_reentry("`Conduit.deploy()`")
        chosen = targets.get(target, **options)  # an option the target does not take: before any write
        self._check_script_hooks()
        saved = self.save(path) if path is not None or self._source is None else self._source
        with paths.private_files():  # the state it writes and the servers it starts are private
            return chosen.apply(self._manifest, api_key=self._api_key, manifest_path=str(saved), progress=print)

    def _check_script_hooks(self) -> None:
        """Hooks defined in the running script (`__main__`) will be imported by the server: import
        the script once in a subprocess first, so an unguarded one fails here, not in the server."""
        for (index, key), function in self._functions.items():
            if function.__module__ == "__main__":
                failure = import_in_subprocess(getattr(self._manifest.flow[index], key), self._manifest.base_dir)
                if failure:
                    raise UsageError(f"cannot deploy {self._manifest.name}: {failure}")


def _python_flow(flow: Any, base_dir: Path) -> tuple[Any, list[Problem], HookFunctions]:
    """The flow with stages as mappings and hook functions as `file.py:function`, and the
    functions themselves by (stage index, hook key)."""
    stages = [flow] if isinstance(flow, Stage) else stage_list(flow)
    if not isinstance(stages, (list, tuple)):
        return flow, [], {}
    mappings, problems, functions = [], [], {}
    for index, stage in enumerate(stages):
        stage = stage.model_dump(exclude_none=True) if isinstance(stage, Stage) else stage_mapping(stage)
        if isinstance(stage, dict):
            stage = dict(stage)
            for hook in HOOK_KEYS:
                if callable(stage.get(hook)):
                    functions[(index, hook)] = stage[hook]
                    stage[hook], problem = _hook_reference(stage[hook], base_dir)
                    problems += [Problem(problem, ("flow", index, hook))] if problem else []
        mappings.append(stage)
    return mappings, problems, functions


def _hook_reference(function: Any, base_dir: Path) -> tuple[Optional[str], Optional[str]]:
    """(`file.py:function`, None), or (None, why this callable cannot be a hook)."""
    name = getattr(function, "__name__", type(function).__name__)
    if not inspect.isfunction(function):
        return None, f"hook {name} is not a plain function; define one with `def` in a .py file"
    if name == "<lambda>":
        return None, "a lambda cannot be a hook; define a named function in a .py file next to the manifest"
    if function.__qualname__ != name:
        owner = function.__qualname__.rsplit(".", 1)[0].replace(".<locals>", "")
        return None, f"hook `{name}` is defined inside `{owner}`; define it at the top level of a .py file"
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        source = None
    if not source or not source.endswith(".py") or not Path(source).is_file():
        return (
            None,
            f"hook `{name}` was defined in an interactive session; move it into a .py file and import it from there",
        )
    return f"{Path(os.path.relpath(source, base_dir)).as_posix()}:{name}", None
