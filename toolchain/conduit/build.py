"""A rendered build context -> a Bento in the local store at `$CONDUIT_HOME/bentoml`.

The Bento's version is the render's content hash, so "nothing changed" is a store lookup: the
same tag already there is reused. `force=True` or `manifest.force_rebuild` deletes it and builds
again. Builds run in-process through BentoML's Python API (about 0.6 s for iris here, against
2.3 s for a `bentoml build` subprocess, most of it interpreter and import start-up).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from conduit.errors import DeployError
from conduit.manifest import Manifest
from conduit.paths import conduit_home, tighten
from conduit.render import RenderResult, render
from conduit.targets.local.bentoml_serving import bento_folder, bento_store

Progress = Callable[[str], None]
BAR_MIN_BYTES = 1024 * 1024  # smaller artifacts copy too fast for a bar to mean anything


@dataclass(frozen=True)
class BuildResult:
    tag: str  # "name:version"
    reused: bool
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.tag.split(":", 1)[0]

    @property
    def version(self) -> str:
        return self.tag.split(":", 1)[1]


def build(manifest: Manifest, force: bool = False, progress: Progress = print) -> BuildResult:
    start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="conduit-render-", dir=build_workspace()))
    try:
        progress("⬆️  Copying conduit artifacts...")
        rendered = render(manifest, scratch, on_copy=CopyBar())
        progress(f"✅ Rendered {manifest.name} (version {rendered.version}).")
        return _build_rendered(rendered, force or manifest.force_rebuild, progress, start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def build_workspace() -> Path:
    """Where build contexts are rendered: `$CONDUIT_HOME/tmp`, unless a folder on that path is
    hidden (the default `~/.conduit` is): BentoML refuses to build from a path with a dot-folder
    in it, so those go to the system's temporary folder instead (mkdtemp makes them private)."""
    candidates = [conduit_home() / "tmp", Path(tempfile.gettempdir())]
    for folder in candidates:
        if not hidden_part(folder):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            return folder
    raise DeployError(
        f"cannot build: BentoML refuses paths with a hidden folder in them, and both {candidates[0]} "
        f"and the temporary folder {candidates[1]} have one ({hidden_part(candidates[1])}); "
        "set TMPDIR to a folder without a leading dot in its path"
    )


def hidden_part(folder: Path) -> Optional[str]:
    """The first dot-folder on `folder`'s absolute path, if any."""
    return next((part for part in folder.resolve().parts if part.startswith(".")), None)


def _build_rendered(rendered: RenderResult, force: bool, progress: Progress, start: float) -> BuildResult:
    tag = f"{rendered.name}:{rendered.version}"
    exists = stored_bento(rendered).is_file()
    if exists and not force:
        progress(f"✅ Bento {tag} is up to date: nothing changed, reusing it.")
        return BuildResult(tag, True, time.perf_counter() - start)
    store = bento_store()
    if exists:
        store.delete(tag)
    _build_bento(rendered, store)
    tighten(bento_folder(tag))  # BentoML makes env/docker/entrypoint.sh 0755 whatever the umask
    seconds = time.perf_counter() - start
    progress(f"✅ Built Bento {tag} in {seconds:.1f}s.")
    return BuildResult(tag, False, seconds)


def stored_bento(rendered: RenderResult) -> Path:
    """The file BentoML's store reads for this version (`bentos/<name>/<version>/bento.yaml`).
    Looked up without importing BentoML, which was half the time of an apply that changed nothing."""
    return bento_folder(f"{rendered.name}:{rendered.version}") / "bento.yaml"


def _build_bento(rendered: RenderResult, store: Any) -> None:
    import bentoml

    # Every context's glue is a module named `service`: drop a cached one from an earlier build.
    sys.modules.pop("service", None)
    previous_cwd = os.getcwd()
    # A GPU bentofile (docker.cuda_version) takes BentoML's v1 build path, which resolves
    # requirements.txt against the working directory rather than the build context.
    os.chdir(rendered.path)
    try:
        with bentoml_warnings_hidden():
            bentoml.bentos.build_bentofile(
                str(rendered.path / "bentofile.yaml"),
                build_ctx=str(rendered.path),
                version=rendered.version,
                _bento_store=store,
            )
    except Exception as exc:
        raise DeployError(f"bentoml build of {rendered.name} failed: {exc}") from exc
    finally:
        os.chdir(previous_cwd)
        sys.modules.pop("service", None)


# BentoML's loggers: during a build they only explain BentoML's own choices ("docker.cuda_version is
# not supported by bento v2, fallback to bento v1"), which conduit made on purpose.
BENTOML_LOGGERS = ("bentoml", "_bentoml_sdk", "_bentoml_impl")


@contextlib.contextmanager
def bentoml_warnings_hidden() -> Iterator[None]:
    """Only BentoML's errors reach apply's output while it builds; its warnings (logged, or
    `warnings.warn`) are dropped, so the output holds conduit's lines alone."""
    loggers = [logging.getLogger(name) for name in BENTOML_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class CopyBar:
    """A tqdm bar per large artifact (plain percentages without tqdm), on stderr."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.bar: Any = None  # a tqdm bar (or a _PlainBar) while a large artifact copies
        self.name: Optional[str] = None

    def __call__(self, done: int, total: int, name: str) -> None:
        if total < BAR_MIN_BYTES:
            return
        if self.name != name:
            self._open(total, name)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
            self.name = None

    def _open(self, total: int, name: str) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = _PlainBar
        self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=name, file=self.stream, leave=True)
        self.name = name


class _PlainBar:
    def __init__(self, total: int, desc: str, file: Any, **_: Any) -> None:
        self.total, self.desc, self.file, self.n = total, desc, file, 0

    def update(self, step: int) -> None:
        self.n += step

    def close(self) -> None:
        self.file.write(f"100% {self.desc} ({self.total} bytes)\n")
