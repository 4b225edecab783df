"""`conduit init [--name] [--model-type] [--path] [PATH]`: write a starter conduit.yaml.

Decision: init writes the manifest for the artifact you have. Without --path it looks in the
folder for one (a .onnx, .pt or .pkl file, a spaCy folder with meta.json, a Hugging Face folder
with config.json) and guesses the model type from it, so the output validates at once. When there
is no artifact yet it names `model.pkl` (or the type's usual artifact) and says that `conduit
validate` passes once that file exists. The first line points editors at conduit.schema.json; when
none is found up the tree, init writes one next to the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from conduit.errors import UsageError
from conduit.manifest import MANIFEST_NAME, ManifestInvalid, load
from conduit.manifest.dump import SCHEMA_FILE, find_schema, to_yaml
from conduit.manifest.loader import with_defaults
from conduit.manifest.model import Manifest
from conduit.manifest.names import name_problem, suggest_name
from conduit.manifest.schema import write_schema
from conduit.model_types import MODEL_TYPES, ModelType

# Artifact suffix -> the model type init proposes for it (in the order init looks for them).
SUFFIX_TYPES = {".onnx": ModelType.ONNX, ".pt": ModelType.TORCH, ".pkl": ModelType.SKLEARN}
FOLDER_TYPES = {"meta.json": ModelType.SPACY, "config.json": ModelType.HUGGINGFACE_PIPELINE}
PLACEHOLDERS = {ModelType.SPACY: "spacy_model", ModelType.HUGGINGFACE_PIPELINE: "hf_model"}


@click.command("init")
@click.option("--name", help="Deployment name (default: from the folder name).")
@click.option(
    "--model-type", type=click.Choice([member.value for member in ModelType]), help="Default: from the artifact."
)
@click.option("--path", "artifact", help="The model file or folder, relative to the manifest.")
@click.option("--force", is_flag=True, help="Overwrite an existing manifest.")
@click.argument("target", required=False, type=click.Path(path_type=Path), default=Path("."))
def command(name: Optional[str], model_type: Optional[str], artifact: Optional[str], force: bool, target: Path) -> int:
    """Write a starter conduit.yaml (in PATH, a folder or a .yaml file; default: here)."""
    file = target if target.suffix in (".yaml", ".yml") else target / MANIFEST_NAME
    if file.exists() and not force:
        raise UsageError(f"{file} exists; pass --force to overwrite it")
    folder = file.parent.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    kind, artifact = _artifact(folder, ModelType(model_type) if model_type else None, artifact)
    manifest = _starter(name or suggest_name(folder.name), kind, artifact, folder)
    if find_schema(folder) is None:
        write_schema(folder / SCHEMA_FILE)
        click.echo(f"wrote {file.parent / SCHEMA_FILE} (lets editors check conduit.yaml as you type)")
    file.write_text(to_yaml(manifest), encoding="utf-8")
    click.echo(f"wrote {file} ({kind.value}, {artifact})")
    _next_step(file, artifact)
    return 0


def _artifact(folder: Path, kind: Optional[ModelType], artifact: Optional[str]) -> tuple[ModelType, str]:
    """The model type and artifact to name: as given, else found in the folder, else a placeholder."""
    if artifact is not None:
        return kind or _type_of(folder / artifact) or ModelType.SKLEARN, artifact
    for candidate in sorted(folder.iterdir()):
        found = _type_of(candidate)
        if found is not None and (kind is None or kind == found or _fits(kind, candidate)):
            return kind or found, candidate.name
    kind = kind or ModelType.SKLEARN
    suffixes = MODEL_TYPES[kind].suffixes
    return kind, PLACEHOLDERS.get(kind) or f"model{suffixes[0]}"


def _type_of(path: Path) -> Optional[ModelType]:
    if path.is_dir():
        return next((kind for marker, kind in FOLDER_TYPES.items() if (path / marker).is_file()), None)
    return SUFFIX_TYPES.get(path.suffix.lower())


def _fits(kind: ModelType, path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in MODEL_TYPES[kind].suffixes


def _starter(name: str, kind: ModelType, artifact: str, folder: Path) -> Manifest:
    problem = name_problem(name)
    if problem:
        raise UsageError(f"{problem} (hint: did you mean `{suggest_name(name)}`?)")
    if kind == ModelType.HUGGINGFACE_PIPELINE:
        stage = {"model_type": kind, "task": "text-classification", "model": artifact}
    else:
        stage = {"model_type": kind, "path": artifact}
    return with_defaults(Manifest(name=name, flow=[stage]), folder)


def _next_step(file: Path, artifact: str) -> None:
    try:
        load(file)
    except ManifestInvalid as invalid:
        click.echo(
            f"next: put your model at {file.parent / artifact}; `conduit validate {file}` passes once it is there"
        )
        for problem in invalid.problems:
            click.echo(f"  {problem}")
        return
    click.echo(f"{file} is valid; next: `conduit run` or `conduit apply`")
