"""Manifest -> a BentoML build context at `<out_dir>/<name>/`.

    service.py          glue from templates/service.py.j2 (declares resources, workers, limits)
    bentofile.yaml      glue from templates/bentofile.yaml.j2 (python version, CUDA base, no locking)
    conduit.lock.json   the manifest with paths rewritten to this layout, artifact sha256 hashes,
                        pinned package versions, what each artifact records of the library that
                        wrote it (`trained_with`)
    requirements.txt    the framework versions installed here, except where an artifact records
                        the version that wrote it (that one is pinned: a model is served by the
                        library that wrote it, `conduit.artifacts.pins`) + conduit's runtime
                        dependencies + the user's requirements (which win over a version merely
                        installed here; validate refuses one that contradicts an artifact)
    conduit/            the runtime code (the conduit package without its CLI and deploy targets)
    artifacts/          model files and folders
    hooks/              pre/post hook files

Rendering is deterministic: the same manifest, artifacts and installed versions give the same
bytes and the same `version` (a content hash of the whole context, used as the Bento version).
The only side effect is replacing `<out_dir>/<name>/`, built in a staging folder first so a
failed render leaves the previous one whole.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

from conduit import paths
from conduit.artifacts import inspect_artifact, pins
from conduit.artifacts.pins import canonical_name
from conduit.errors import ConduitError, ModelLoadError
from conduit.hardware import CUDA_VERSION, MATH_THREAD_VARIABLES, spec, worker_layout
from conduit.manifest import Manifest
from conduit.manifest.confine import escape
from conduit.model_types import MODEL_TYPES
from conduit.serving.bento import LOCK_FILE

LOCK_FORMAT = 1
VERSION_LENGTH = 16  # hex characters of the content hash used as the Bento version
CHUNK = 1024 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
# Requests in flight per worker before /predict answers 503; queued work past this only adds latency.
MAX_CONCURRENCY_PER_WORKER = 256
TIMEOUT_CPU_S = 60
TIMEOUT_GPU_S = 300  # generation on a GPU can take minutes
# Installed into every bento next to the framework (versions pinned to the ones here).
# uvloop + httptools: uvicorn (under `bentoml serve`) picks them when importable, 1.3-1.6x the
# requests per second of its pure-Python defaults (bench/PROFILE.md).
RUNTIME_PACKAGES = ("numpy", "orjson", "cloudpickle", "pydantic", "ruamel.yaml", "uvloop", "httptools")
# Parts of the conduit package a served bento never imports.
NOT_RUNTIME = (
    "cli", "targets", "gitops", "environments", "templates", "__pycache__",
    "api.py", "build.py", "client.py", "image.py", "keys.py", "predictions.py", "render.py", "store.py",
)
GLUE_FILES = ("service.py", "bentofile.yaml", LOCK_FILE)

# (bytes done, bytes total, file name) while copying artifacts; build shows a bar with it.
CopyProgress = Callable[[int, int, str], None]


class RenderError(ConduitError):
    type = "render_error"


@dataclass(frozen=True)
class RenderResult:
    path: Path  # the build context folder, <out_dir>/<name>/
    version: str  # content hash of the whole build context: the Bento version

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Copy:
    """One file or folder the manifest points at, and where it lands in the bento."""

    source: Path
    target: str  # relative to the build context


def render(manifest: Manifest, out_dir: Path | str, on_copy: Optional[CopyProgress] = None) -> RenderResult:
    target = Path(out_dir).resolve() / manifest.name
    _refuse_unsafe_target(target, manifest)
    copies, lock_manifest = bento_layout(manifest)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{manifest.name}.", dir=target.parent))
    try:
        file_hashes: dict[str, str] = {}
        artifact_hashes = {copy.target: copy_into(copy, staging, on_copy, file_hashes) for copy in copies}
        copy_runtime_code(staging / "conduit")
        lock = lock_document(manifest, lock_manifest, artifact_hashes, trained_with(copies))
        write_glue(staging, manifest, lock, requirements_text(manifest, lock["packages"], decided_by_artifacts(lock)))
        version = content_hash(staging, file_hashes)
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RenderResult(target, version)


# --- layout: what goes where -------------------------------------------------------------------


def bento_layout(manifest: Manifest) -> tuple[list[Copy], dict]:
    """The files to copy and the manifest (as JSON) with every path rewritten to the bento."""
    document = manifest.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"force_rebuild"})
    copies: list[Copy] = []
    taken: dict[str, Path] = {}
    for index, (stage, stage_doc) in enumerate(zip(manifest.flow, document["flow"])):
        if stage.path is not None:
            stage_doc["path"] = _place(confined(manifest, stage.path), "artifacts", index, copies, taken)
        if stage.is_huggingface and stage.model:
            stage_doc["model"] = _place(_huggingface_folder(manifest, stage.model), "artifacts", index, copies, taken)
        for hook in ("pre", "post"):
            if getattr(stage, hook):
                file_name, function = getattr(stage, hook).rsplit(":", 1)
                stage_doc[hook] = _place(confined(manifest, file_name), "hooks", index, copies, taken) + ":" + function
    if manifest.requirements_file:
        document["requirements_file"] = "requirements.txt"  # merged into the bento's requirements
    return copies, document


def _place(source: Path, folder: str, stage_index: int, copies: list[Copy], taken: dict[str, Path]) -> str:
    """`folder/<name>`; the same source shares a slot, a different one with the same name gets
    the stage number in front so two stages' `model.pkl` never collide."""
    if not source.exists():
        raise ModelLoadError(f"{source} does not exist (run the training script first?)")
    target = f"{folder}/{source.name}"
    if taken.get(target, source) != source:
        target = f"{folder}/{stage_index}-{source.name}"
    if target not in taken:
        taken[target] = source
        copies.append(Copy(source, target))
    return target


def confined(manifest: Manifest, written: str) -> Path:
    """`written` resolved against the manifest's folder, refused when it leads out of the manifest's
    tree: validation checked already, but files may have changed since, and render copies them."""
    outside = escape(written, manifest.base_dir)
    if outside is not None:
        raise RenderError(f"refusing to render {manifest.name}: {outside.message} (hint: {outside.hint})")
    return manifest.resolve(written)


def _huggingface_folder(manifest: Manifest, model: str) -> Path:
    """A local folder as written, else the snapshot of a hub id already in the local cache."""
    if manifest.resolve(model).is_dir():
        return confined(manifest, model)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - whatever the hub library raises offline, the fix is the same
        raise ModelLoadError(
            f"Hugging Face model {model!r} is neither a local folder nor in the local cache "
            f"(conduit never downloads at deploy time: save it with save_pretrained first): {exc}"
        ) from None


def _refuse_unsafe_target(target: Path, manifest: Manifest) -> None:
    """Never replace the user's own folders: only an earlier render (it has a lock file)."""
    base = manifest.base_dir.resolve()
    if target == base or target in base.parents:
        raise RenderError(f"refusing to render into {target}: it holds the manifest itself; choose another --out")
    if target.exists() and any(target.iterdir()) and not (target / LOCK_FILE).exists():
        raise RenderError(f"refusing to replace {target}: it is not an earlier conduit render")


def _replace(staging: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)
    target.chmod(0o777 & ~paths.current_umask())  # what mkdir would have made (mkdtemp made it 0700)


# --- copying -----------------------------------------------------------------------------------


def copy_into(copy: Copy, root: Path, on_copy: Optional[CopyProgress], file_hashes: dict[str, str]) -> str:
    """Copy a file or folder into the bento; returns `sha256:<hex>` of its content and records
    each file's hash in `file_hashes` (so the version hash never reads an artifact twice)."""
    if not copy.source.is_dir():
        file_hashes[copy.target] = _copy_file(copy.source, root / copy.target, on_copy)
        return f"sha256:{file_hashes[copy.target]}"
    digest = hashlib.sha256()
    for relative in _files_under(copy.source):
        target = f"{copy.target}/{relative.as_posix()}"
        file_hashes[target] = _copy_file(copy.source / relative, root / target, on_copy)
        digest.update(f"{relative.as_posix()}\0{file_hashes[target]}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _copy_file(source: Path, destination: Path, on_copy: Optional[CopyProgress]) -> str:
    """Copy in chunks, hashing as it goes (one read of a multi-GB artifact, not two)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    total = source.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with source.open("rb") as reader, destination.open("wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            done += len(chunk)
            if on_copy is not None:
                on_copy(done, total, source.name)
    return digest.hexdigest()


def _files_under(folder: Path) -> list[Path]:
    return sorted(
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def copy_runtime_code(destination: Path) -> None:
    source = paths.package_dir()
    for relative in _files_under(source):
        if relative.parts[0] in NOT_RUNTIME or relative.suffix not in (".py", ".typed"):
            continue
        _copy_file(source / relative, destination / relative, None)


# --- lock, requirements, glue ------------------------------------------------------------------


def installed_version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def framework_packages(manifest: Manifest) -> list[str]:
    names = {package for stage in manifest.flow for package in MODEL_TYPES[stage.model_type].packages}
    return sorted(names)


def trained_with(copies: list[Copy]) -> dict[str, dict[str, Any]]:
    """Bento path -> what the artifact records of the library that wrote it (versions, producer, opset)."""
    found = {}
    for copy in copies:
        artifact = inspect_artifact(copy.source, import_classes=False) if copy.target.startswith("artifacts/") else None
        record = {"versions": artifact.versions, "producer": artifact.producer, "opset": artifact.opset} if artifact else {}
        record = {key: value for key, value in record.items() if value}
        if record:
            found[copy.target] = record
    return dict(sorted(found.items()))


def lock_document(manifest: Manifest, lock_manifest: dict, artifact_hashes: dict[str, str],
                  trained: Optional[dict[str, dict[str, Any]]] = None) -> dict:  # fmt: skip
    from conduit import __version__

    installed = {name: installed_version(name) for name in [*framework_packages(manifest), *RUNTIME_PACKAGES]}
    recorded = {lib: ver for record in (trained or {}).values() for lib, ver in record.get("versions", {}).items()}
    return {
        "lock_format": LOCK_FORMAT,
        "conduit_version": __version__,
        "manifest": lock_manifest,
        "hardware": str(manifest.resolved_hardware),
        "artifacts": dict(sorted(artifact_hashes.items())),
        "packages": pins.with_trained_versions(installed, recorded),
        "trained_with": trained or {},
    }


def decided_by_artifacts(lock: dict) -> set[str]:
    """The distributions whose pin an artifact decided (the user's requirements never replace those)."""
    libraries = {library for record in lock["trained_with"].values() for library in record.get("versions", {})}
    return {pins.distribution(library, lock["packages"]) for library in libraries}


def requirements_text(manifest: Manifest, packages: dict[str, Optional[str]], decided: Iterable[str] = ()) -> str:
    """Conduit's pins, less those the user's requirements_file names (unless an artifact decided
    them: validate refused a contradiction, so both then agree), then the user's file."""
    user_text = _user_requirements(manifest)
    by_artifacts = {canonical_name(name) for name in decided}
    theirs = pins.user_names(user_text) - by_artifacts
    # Served on another Python than the one rendering: what is installed here may not exist for it
    # (numpy 2.4 needs 3.11), so only what the artifacts decided stays pinned; the rest is resolved.
    loose = manifest.resolved_python_version != "{}.{}".format(*sys.version_info[:2])
    lines = ["# Generated by conduit: the versions installed where this bento was rendered, or the artifacts'."]
    if loose:
        lines.append(f"# Python {manifest.resolved_python_version} serves it: only the artifacts' own versions are pinned.")
    lines += [
        pins.requirement(name, None if loose and canonical_name(name) not in by_artifacts else version)
        for name, version in packages.items()
        if canonical_name(name) not in theirs
    ]
    if user_text:
        lines += [f"# From {manifest.requirements_file}:", user_text.strip()]
    return "\n".join(lines) + "\n"


def _user_requirements(manifest: Manifest) -> str:
    if not manifest.requirements_file:
        return ""
    user_file = confined(manifest, manifest.requirements_file)
    if not user_file.is_file():
        raise RenderError(f"requirements_file {manifest.requirements_file} not found at {user_file}")
    return user_file.read_text(encoding="utf-8")


def service_settings(manifest: Manifest) -> dict[str, Any]:
    """The values the templates fill in, all read from the manifest and the hardware table."""
    hardware = spec(manifest.resolved_hardware)
    resources: dict[str, Any] = {"cpu": str(manifest.cpu), "memory": f"{manifest.memory:g}Gi"}
    if hardware.is_gpu:
        resources.update(gpu=1, gpu_type=hardware.bentoml_gpu_type)
    workers, threads_per_worker = worker_layout(manifest.resolved_hardware, manifest.cpu)
    envs = [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "TRANSFORMERS_OFFLINE", "value": "1"}]
    return {
        "name": manifest.name,
        "class_name": "".join(part.capitalize() for part in manifest.name.split("-")) or "Service",
        "hardware": str(manifest.resolved_hardware),
        "workers": workers,
        "math_thread_variables": MATH_THREAD_VARIABLES,
        "threads_per_worker": threads_per_worker,
        "resources": resources,
        # max_concurrency is enforced by conduit's /predict (a 503 in the contract's shape), not
        # by BentoML's middleware, which would answer 429 in its own shape before conduit sees it.
        "traffic": {"timeout": TIMEOUT_GPU_S if hardware.is_gpu else TIMEOUT_CPU_S},
        "max_body_bytes": MAX_BODY_BYTES,
        "max_concurrency_per_worker": MAX_CONCURRENCY_PER_WORKER,
        "envs": envs,
        "python_version": manifest.resolved_python_version,
        "cuda_version": CUDA_VERSION if hardware.is_gpu else None,
    }


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.templates_dir())),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["pyrepr"] = repr
    return env


def render_glue(manifest: Manifest) -> dict[str, str]:
    """service.py and bentofile.yaml as text (pure)."""
    env = _environment()
    settings = service_settings(manifest)
    return {name: env.get_template(f"{name}.j2").render(**settings) for name in ("service.py", "bentofile.yaml")}


def write_glue(root: Path, manifest: Manifest, lock: dict, requirements: str) -> None:
    for name, text in render_glue(manifest).items():
        (root / name).write_text(text, encoding="utf-8")
    (root / LOCK_FILE).write_text(json.dumps(lock, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    (root / "requirements.txt").write_text(requirements, encoding="utf-8")


def content_hash(root: Path, known: Optional[dict[str, str]] = None) -> str:
    """Hash of every file's path and bytes under `root`: equal contexts, equal versions.
    `known` maps relative paths to hex sha256 already computed while copying."""
    known = known or {}
    digest = hashlib.sha256()
    for relative in _files_under(root):
        name = relative.as_posix()
        file_hash = known.get(name) or hashlib.sha256((root / relative).read_bytes()).hexdigest()
        digest.update(f"{name}\0{file_hash}\n".encode())
    return digest.hexdigest()[:VERSION_LENGTH]


def glue_files(path: Path) -> Iterable[Path]:
    """The committed part of a render (the rest is gitignored)."""
    return [path / name for name in GLUE_FILES]


__all__ = ["RenderError", "RenderResult", "bento_layout", "render", "render_glue", "service_settings"]
