"""Manifest -> YAML text, in one exact format so a committed conduit.yaml and `Conduit(...).to_yaml()`
can be compared byte for byte:

- an optional first line `# yaml-language-server: $schema=<rel>`, <rel> being the relative path from
  the manifest's folder to the nearest `conduit.schema.json` up the tree (no line when none is found);
- keys in model field order, `apiVersion` first; every field whose value is not None;
- stage keys only when set (not None, options not empty); `flow` always a block list of mappings;
- `python_version` always quoted ("3.10"); floats as `8.0`; two-space indentation.

The API key is not part of a Manifest, so it can never be written here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Optional

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from conduit.manifest.model import Manifest

SCHEMA_FILE = "conduit.schema.json"


def to_yaml(manifest: Manifest) -> str:
    document = {key: value for key, value in _fields(manifest).items() if value is not None}
    document["flow"] = [
        {key: value for key, value in stage.items() if value not in (None, {})} for stage in document["flow"]
    ]
    if "prediction_log" in document:  # its optional url only when set, as a stage's keys
        document["prediction_log"] = {key: value for key, value in document["prediction_log"].items() if value is not None}
    if "python_version" in document:
        document["python_version"] = DoubleQuotedScalarString(document["python_version"])
    comment = schema_comment(manifest.base_dir)
    return (f"{comment}\n" if comment else "") + _dump(document)


def _fields(manifest: Manifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True)


def schema_comment(base_dir: Path) -> Optional[str]:
    """The yaml-language-server line pointing at the nearest conduit.schema.json, if there is one."""
    schema = find_schema(base_dir)
    if schema is None:
        return None
    return f"# yaml-language-server: $schema={Path(os.path.relpath(schema, base_dir)).as_posix()}"


def find_schema(base_dir: Path) -> Optional[Path]:
    folder = Path(base_dir).resolve()
    return next(
        (candidate / SCHEMA_FILE for candidate in (folder, *folder.parents) if (candidate / SCHEMA_FILE).is_file()),
        None,
    )


def _dump(document: dict) -> str:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold long values: the text must stay byte-identical
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
