"""conduit.schema.json: generated, documented, current, and in agreement with the loader."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
from example_mirror import EXAMPLES, REPO
from ruamel.yaml import YAML
from test_bad_manifests import CASES, Case

from conduit.cli.main import main
from conduit.manifest import load
from conduit.manifest.schema import manifest_schema, schema_text

VALIDATOR = jsonschema.Draft202012Validator(manifest_schema())


def schema_errors(text: str) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(YAML(typ="safe").load(text))]


def test_committed_schema_is_current():
    assert main(["schema", "--check", "--out", str(REPO / "conduit.schema.json")]) == 0


def test_check_fails_on_drift(tmp_path: Path, capsys: pytest.CaptureFixture):
    stale = tmp_path / "conduit.schema.json"
    stale.write_text(schema_text().replace("Most replicas at once.", "Hand-edited."))
    assert main(["schema", "--check", "--out", str(stale)]) == 1
    assert "is out of date" in capsys.readouterr().err


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(manifest_schema())


def documented(schema: Any, where: str = "") -> Iterator[tuple[str, dict]]:
    """Every property (and tuple item) anywhere in the schema, with where it is."""
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            if not where.endswith(("if", "then", "else")):
                yield f"{where}.{name}", sub
        for index, sub in enumerate(schema.get("prefixItems", [])):
            yield f"{where}[{index}]", sub
        for key, sub in schema.items():
            yield from documented(sub, f"{where}.{key}")
    elif isinstance(schema, list):
        for index, sub in enumerate(schema):
            yield from documented(sub, f"{where}[{index}]")


def test_every_field_has_a_description_and_examples():
    fields = list(documented(manifest_schema()))
    assert len(fields) >= 20
    for where, field in fields:
        assert field.get("description") and field.get("examples"), where


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.parent.name for path in EXAMPLES])
def test_every_example_passes_the_schema(example: Path):
    assert schema_errors(example.read_text()) == []


SCHEMA_CASES = [case for case in CASES if case.schema is not None]


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=[case.id for case in SCHEMA_CASES])
def test_schema_and_loader_agree_on_bad_manifests(case: Case):
    """Rules the schema can express (schema=True) fail it; rules it cannot (files, min <= max) pass it."""
    assert bool(schema_errors(case.text)) is case.schema


VALID = [
    "name: iris\nflow: [sklearn, model.pkl]\n",
    "name: iris\nflow: {model_type: sklearn, path: model.pkl, pre: hooks.py:to_features}\n",
    "name: iris\nflow: [sklearn, model.pkl, {post: hooks.py:to_labels}]\n",
    "name: iris\nflow:\n  - [sklearn_preprocessor, scaler.pkl]\n  - [onnx, model.onnx]\nhardware: AMPERE_A100\n",
    "name: iris\nflow: {model_type: huggingface_pipeline, task: fill-mask, model: hf_model, options: {top_k: 2}}\n",
    "name: iris\nflow: [spacy, spacy_model]\nbatching: {max_batch_size: 8}\nrequirements_file: requirements.txt\n",
]


@pytest.mark.parametrize("text", VALID)
def test_schema_and_loader_agree_on_good_manifests(text: str, artifacts: Path):
    (artifacts / "conduit.yaml").write_text(text)
    assert load(artifacts / "conduit.yaml").name == "iris"
    assert schema_errors(text) == []
