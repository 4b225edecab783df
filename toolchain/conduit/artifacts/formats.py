"""Artifacts other than pickles, each told by what it holds: XGBoost's `.json`/`.ubj` (a "learner"
whose objective says classifier or not), ONNX, TorchScript (a zip with `code/` and `constants.pkl`;
`torch.save` writes a zip with only `data.pkl`, which `torch.jit.load` cannot read), a spaCy folder
(`meta.json` naming a language) and a Hugging Face folder (`config.json`; its architecture says the task).

Each also says which library wrote it, where the file records that: XGBoost's top-level `version`
(`[3, 2, 0]`, in the UBJSON's tail as in the JSON), a spaCy pipeline's `spacy_version` range, a
Hugging Face config's `transformers_version`; ONNX's producer and opset are read from the protobuf's
top-level fields (the graph is stepped over by its length, never parsed); TorchScript records only
its archive format version (`<name>/version`), not torch's.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Optional

from conduit.artifacts.kinds import Artifact

CLASSIFIER_OBJECTIVES = ("binary:", "multi:")
# ModelProto's field numbers (onnx.proto): producer_name, producer_version, opset_import.
ONNX_PRODUCER_NAME, ONNX_PRODUCER_VERSION, ONNX_OPSET_IMPORT = 2, 3, 8
UBJ_OBJECTIVE = re.compile(rb"(binary|multi|reg|count|survival|rank):[a-z_]+")
UBJ_VERSION = re.compile(rb"version\[(?:\$([iUIlL]))?#([iUIlL])")
UBJ_INTEGERS = {b"i": (1, ">b"), b"U": (1, ">B"), b"I": (2, ">h"), b"l": (4, ">i"), b"L": (8, ">q")}
# XGBoost writes keys sorted: `learner` opens the file, and its `objective` follows the trees, near the end.
UBJ_SCAN_BYTES = 1 << 20
# The end of a Hugging Face architecture's class name -> the pipeline task it serves.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForImageClassification", "image-classification"),
    ("ForAudioClassification", "audio-classification"),
    ("ForCTC", "automatic-speech-recognition"),
    ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
    ("ForObjectDetection", "object-detection"),
    ("Model", "feature-extraction"),
)


def inspect_xgboost_json(path: Path) -> Optional[Artifact]:
    document = _json(path)
    learner = document.get("learner") if isinstance(document, dict) else None
    if not isinstance(learner, dict):
        return None
    objective = learner.get("objective", {}).get("name") if isinstance(learner.get("objective"), dict) else None
    version = document.get("version")
    versions = {"xgboost": ".".join(map(str, version))} if isinstance(version, list) else {}
    return Artifact("xgboost-json", "xgboost", role=_objective_role(objective), versions=versions)


def inspect_xgboost_ubj(path: Path) -> Optional[Artifact]:
    with open(path, "rb") as file:
        head = file.read(UBJ_SCAN_BYTES)
        if b"learner" not in head:
            return None
        file.seek(max(0, path.stat().st_size - UBJ_SCAN_BYTES))
        tail = file.read(UBJ_SCAN_BYTES)
    objective = UBJ_OBJECTIVE.search(tail)
    role = _objective_role(objective.group(0).decode() if objective else None)
    version = _ubj_version(tail)
    return Artifact("xgboost-ubj", "xgboost", role=role, versions={"xgboost": version} if version else {})


def _ubj_version(tail: bytes) -> Optional[str]:
    """`version: [3, 2, 0]` as XGBoost writes it in UBJSON: a counted array (`[#<count>`) of small
    integers, each with its type marker, or with one type for all (`[$i#<count>`)."""
    match = UBJ_VERSION.search(tail)
    if match is None:
        return None
    shared, count_marker, rest = match.group(1), match.group(2), tail[match.end() :]
    count, at = _ubj_int(count_marker, rest, 0)
    parts = []
    for _ in range(count if count is not None and count <= 4 else 0):
        marker = shared or rest[at : at + 1]
        number, at = _ubj_int(marker, rest, at + (0 if shared else 1))
        if number is None:
            return None
        parts.append(str(number))
    return ".".join(parts) or None


def _ubj_int(marker: bytes, data: bytes, at: int) -> tuple[Optional[int], int]:
    size = UBJ_INTEGERS.get(marker)
    if size is None or len(data) < at + size[0]:
        return None, at
    return struct.unpack(size[1], data[at : at + size[0]])[0], at + size[0]


def _objective_role(objective: Optional[str]) -> Optional[str]:
    if not isinstance(objective, str):
        return None
    return "classifier" if objective.startswith(CLASSIFIER_OBJECTIVES) else "predictor"


def inspect_onnx(path: Path) -> Artifact:
    fields = _onnx_header(path)
    producer = " ".join(str(fields[number]) for number in (ONNX_PRODUCER_NAME, ONNX_PRODUCER_VERSION) if fields.get(number))
    return Artifact("onnx", "onnx", producer=producer or None, opset=fields.get(ONNX_OPSET_IMPORT))


def _onnx_header(path: Path) -> dict[int, Any]:
    """ModelProto's top-level fields: producer name and version (strings) and the default domain's
    opset (from each `opset_import` entry), stepping over every other length-delimited field."""
    fields: dict[int, Any] = {}
    with open(path, "rb") as file:
        while (key := _varint(file)) is not None:
            number, wire = key >> 3, key & 7
            if wire == 0:
                _varint(file)
                continue
            if wire != 2:
                break  # not a field ModelProto writes at the top level: stop reading
            length = _varint(file) or 0
            if number in (ONNX_PRODUCER_NAME, ONNX_PRODUCER_VERSION):
                fields[number] = file.read(length).decode("utf-8", "replace")
            elif number == ONNX_OPSET_IMPORT:
                domain, version = _opset_entry(file.read(length))
                fields[number] = version if domain in ("", "ai.onnx") and version is not None else fields.get(number)
            else:
                file.seek(length, 1)
    return fields


def _opset_entry(data: bytes) -> tuple[str, Optional[int]]:
    """OperatorSetIdProto: domain (field 1, a string) and version (field 2, a varint)."""
    stream, domain, version = io.BytesIO(data), "", None
    while (key := _varint(stream)) is not None:
        if key == (1 << 3 | 2):
            domain = stream.read(_varint(stream) or 0).decode("utf-8", "replace")
        elif key == (2 << 3):
            version = _varint(stream)
        else:
            break
    return domain, version


def _varint(stream: Any) -> Optional[int]:
    value, shift = 0, 0
    while (byte := stream.read(1)) and shift < 64:
        value |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            return value
    return None


def inspect_torch_file(path: Path) -> Artifact:
    """A `.pt`: TorchScript, or a `torch.save` file (which the torch runtime cannot load)."""
    if not zipfile.is_zipfile(path):
        return Artifact("torch", "torch")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
        return Artifact("torchscript", "torch", producer=_torchscript_format(path, names))
    problem = (
        "was written by torch.save, not TorchScript: torch.jit.load cannot read it"
        if any(name.endswith("/data.pkl") for name in names)
        else None
    )
    return Artifact("torch-save" if problem else "torch", "torch", problem=problem)


def _torchscript_format(path: Path, names: list[str]) -> Optional[str]:
    """`TorchScript archive format 3`: the `<name>/version` record, the only producer a TorchScript file keeps."""
    record = next((name for name in names if name.count("/") == 1 and name.endswith("/version")), None)
    if record is None:
        return None
    with zipfile.ZipFile(path) as archive:
        text = archive.read(record).decode("ascii", "replace").strip()
    return f"TorchScript archive format {text}" if text.isdigit() else None


def inspect_folder(path: Path) -> Optional[Artifact]:
    meta = _json(path / "meta.json")
    if isinstance(meta, dict) and "lang" in meta:
        version = meta.get("spacy_version")
        return Artifact("spacy", "spacy", versions={"spacy": version} if isinstance(version, str) else {})
    config = _json(path / "config.json")
    if isinstance(config, dict) and ("architectures" in config or "model_type" in config):
        version = config.get("transformers_version")
        versions = {"transformers": version} if isinstance(version, str) else {}
        return Artifact("huggingface", "transformers", task=_task(config.get("architectures")), versions=versions)
    return None


def _task(architectures: Any) -> Optional[str]:
    names = [name for name in architectures if isinstance(name, str)] if isinstance(architectures, list) else []
    for name in names:
        task = next((task for ending, task in ARCHITECTURE_TASKS if name.endswith(ending)), None)
        if task is not None:
            return task
    return None


def _json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
