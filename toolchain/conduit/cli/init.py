"""`conduit init [--name] [--model-type] [--path] [PATH]`: write a starter conduit.yaml.

Decision: init writes the manifest for the artifact you have, and only one that `conduit validate`
accepts. Without --path it looks in the folder for one (a pickle, TorchScript `.pt`, `.onnx`,
XGBoost `.json`/`.ubj`, a spaCy or Hugging Face folder) and picks the model type from what the file
holds, read by `conduit.artifacts` without running it: a cloudpickled torch module is `torch`, a
scikit-learn classifier (or a Pipeline ending in one) `sklearn_classifier`, an XGBoost model's
objective says `xgboost_classifier` or `xgboost_regressor`, a Hugging Face architecture its task.
It then validates what it would write; when validate would refuse it (no artifact yet, a truncated
pickle, a task this transformers lacks), it writes nothing, prints the problems and exits 1, so
nobody is left with a broken file. The first line points editors at conduit.schema.json; when
none is found up the tree, init writes one next to the manifest.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import click

from conduit.artifacts import Artifact, inspect_artifact, model_type_of
from conduit.errors import UsageError
from conduit.manifest import MANIFEST_NAME, ManifestInvalid, Problem
from conduit.manifest.dump import SCHEMA_FILE, find_schema, to_yaml
from conduit.manifest.loader import build, with_defaults
from conduit.manifest.model import Manifest
from conduit.manifest.names import name_problem, suggest_name
from conduit.manifest.parse import parse
from conduit.manifest.schema import write_schema
from conduit.model_types import MODEL_TYPES, ModelType

# Artifact suffix -> the model type init proposes when the content does not say more.
SUFFIX_TYPES = {".onnx": ModelType.ONNX, ".pt": ModelType.TORCH, ".pkl": ModelType.SKLEARN}
PLACEHOLDERS = {ModelType.SPACY: "spacy_model", ModelType.HUGGINGFACE_PIPELINE: "hf_model"}
DEFAULT_TASK = "text-classification"


@dataclasses.dataclass(frozen=True)
class Choice:
    kind: ModelType
    artifact: str  # relative to the manifest
    found: Optional[Artifact] = None  # what the artifact holds, when there is one


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
    choice = _choose(folder, ModelType(model_type) if model_type else None, artifact)
    manifest = _starter(name or suggest_name(folder.name), choice, folder)
    try:
        warnings = _validated(to_yaml(manifest), folder)
    except ManifestInvalid as invalid:
        return _refused(file, folder, choice, invalid.problems)
    _write(file, folder, manifest)
    click.echo(f"wrote {file} ({choice.kind.value}, {_described(choice)})")
    for warning in warnings:
        click.echo(f"  {_unplaced(warning)}", err=True)
    click.echo(f"{file} is valid; next: `conduit run` or `conduit apply`")
    return 0


def _choose(folder: Path, kind: Optional[ModelType], artifact: Optional[str]) -> Choice:
    """The model type and artifact to name: as given, else found in the folder, else a placeholder."""
    if artifact is not None:
        found = inspect_artifact(folder / artifact)
        return Choice(kind or _type_of(folder / artifact, found) or ModelType.SKLEARN, artifact, found)
    candidates = [(entry, inspect_artifact(entry)) for entry in _entries(folder)]
    fitting = [
        Choice(kind or found_kind, entry.name, found)
        for entry, found in candidates
        for found_kind in [_type_of(entry, found)]
        if found_kind is not None and (kind is None or kind == found_kind or _fits(kind, entry))
    ]
    if fitting:
        return min(fitting, key=_preference)
    kind = kind or ModelType.SKLEARN
    return Choice(kind, PLACEHOLDERS.get(kind) or f"model{MODEL_TYPES[kind].suffixes[0]}")


def _entries(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith(".")) if folder.is_dir() else []


def _type_of(path: Path, found: Optional[Artifact]) -> Optional[ModelType]:
    """From what the artifact holds; else, for a file whose content says nothing, from its suffix."""
    from_content = model_type_of(found) if found is not None else None
    return from_content or (SUFFIX_TYPES.get(path.suffix.lower()) if path.is_file() else None)


def _preference(choice: Choice) -> tuple[bool, bool, str]:
    """Readable artifacts whose framework is known first, then by name."""
    found = choice.found
    return (found is None or found.framework is None, found is not None and found.problem is not None, choice.artifact)


def _fits(kind: ModelType, path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in MODEL_TYPES[kind].suffixes


def _starter(name: str, choice: Choice, folder: Path) -> Manifest:
    problem = name_problem(name)
    if problem:
        raise UsageError(f"{problem} (hint: did you mean `{suggest_name(name)}`?)")
    if choice.kind == ModelType.HUGGINGFACE_PIPELINE:
        task = (choice.found.task if choice.found else None) or DEFAULT_TASK
        stage = {"model_type": choice.kind, "task": task, "model": choice.artifact}
    else:
        stage = {"model_type": choice.kind, "path": choice.artifact}
    return with_defaults(Manifest.model_validate({"name": name, "flow": [stage]}), folder)


def _validated(text: str, folder: Path) -> list[Problem]:
    """The warnings `conduit validate` gives the text; raises ManifestInvalid where it would refuse it."""
    document, problems = parse(text)
    if document is None:
        raise ManifestInvalid(problems)
    return build(document.data, folder, None, problems)[1]


def _write(file: Path, folder: Path, manifest: Manifest) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if find_schema(folder) is None:
        write_schema(folder / SCHEMA_FILE)
        click.echo(f"wrote {file.parent / SCHEMA_FILE} (lets editors check conduit.yaml as you type)")
    file.write_text(to_yaml(manifest), encoding="utf-8")  # now with the schema line


def _refused(file: Path, folder: Path, choice: Choice, problems: list[Problem]) -> int:
    click.echo(f"error: wrote nothing: `conduit validate` would refuse this {file.name}:", err=True)
    for problem in problems:
        click.echo(f"  {_unplaced(problem)}", err=True)
    if choice.found is None:
        where = folder / choice.artifact
        click.echo(f"next: put your model at {where} (or pass --path), then run `conduit init` again", err=True)
    return 1


def _unplaced(problem: Problem) -> Problem:
    """The problem without a file and line: the file it would point into was not written."""
    return dataclasses.replace(problem, file=None, line=None, column=None)


def _described(choice: Choice) -> str:
    """`model.pkl: a sklearn classifier (sklearn.ensemble._forest.RandomForestClassifier)`, or the like."""
    found = choice.found
    if found is None or found.framework is None:
        return f"{choice.artifact}: model type from its name"
    what = " ".join(part for part in (found.framework, found.role or "model") if part)
    detail = found.estimator or (f"task {found.task}" if found.task else found.format)
    return f"{choice.artifact}: {'an' if what[0] in 'aeiou' else 'a'} {what} ({detail})"
