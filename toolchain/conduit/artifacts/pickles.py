"""Pickle, joblib and cloudpickle files, read without unpickling (see `conduit.artifacts.pickled`).

Three questions, each answered from the opcodes alone, by `inspect_pickle(path)`:
- would `pickle.load` even get through the file? (empty, not a pickle, truncated: `Artifact.problem`)
- which modules its classes and functions live in (also `referenced_modules(data)`, for the fork server);
- which framework that is, and whether the model is a classifier.

joblib may compress the whole file (zlib, gzip, bz2, xz, lzma): those are decompressed with the
standard library first (up to the bytes read). Where the walk cannot see the end (a file bigger
than CHECK_LIMIT_BYTES, a joblib array it cannot size), the file's last byte (STOP) has to do.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

from conduit.artifacts.kinds import Artifact
from conduit.artifacts.pickled import UNSIZED_ARRAY, Built, Skeleton, read_pickle
from conduit.artifacts.roles import final_estimator, role_of

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
STOP = b"."
PROTOCOL_2_PLUS = b"\x80"  # what pickle (protocol 2 and later), joblib and cloudpickle files begin with
CHECK_LIMIT_BYTES = 64 << 20  # read this much to call a pickle whole; a bigger one must end in STOP
COMPRESSED: dict[str, tuple[bytes, ...]] = {
    "zlib": (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"),
    "gzip": (b"\x1f\x8b",),
    "bz2": (b"BZh",),
    "xz": (b"\xfd7zXZ\x00",),
    "lzma": (b"\x5d\x00\x00",),
}
DECOMPRESSORS: dict[str, Callable[[], Any]] = {
    "zlib": zlib.decompressobj,
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "bz2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
    "lzma": lzma.LZMADecompressor,
}
DECOMPRESS_CHUNK_BYTES = 1 << 16  # small: a chunk of zeros may grow a thousandfold
# Frameworks a pickle's modules may point at, strongest first: a Pipeline ending in an XGBoost
# model needs xgboost, and a torch model wrapped in anything needs torch.
FRAMEWORK_PACKAGES = ("torch", "xgboost", "sklearn")
OTHER_FORMATS = {b"PK\x03\x04": "it is a zip archive (torch.save and TorchScript write those)", b"{": "it is JSON text"}
TRUNCATED_WORDS = ("exhausted", "remain", "not enough data")  # pickletools' words for running out of bytes


def read_data(path: Path, limit: int) -> tuple[bytes, bool]:
    """(the pickle's first `limit` bytes, decompressed where joblib compressed them; whether that is all of it)."""
    with open(path, "rb") as file:
        head = file.read(limit + 1)
    compression = compression_of(head)
    if compression is None:
        return head[:limit], len(head) <= limit
    data = _decompress(compression, path, limit + 1)
    return data[:limit], len(data) <= limit


def compression_of(head: bytes) -> Optional[str]:
    return next((name for name, magics in COMPRESSED.items() if head.startswith(magics)), None)


def _decompress(compression: str, path: Path, limit: int) -> bytes:
    """The first `limit` decompressed bytes (or fewer), read a chunk at a time: never the whole file."""
    decompressor = DECOMPRESSORS[compression]()
    data = bytearray()
    try:
        with open(path, "rb") as file:
            while len(data) < limit and (chunk := file.read(DECOMPRESS_CHUNK_BYTES)):
                data += decompressor.decompress(chunk)
    except (zlib.error, OSError, lzma.LZMAError, EOFError):
        pass  # what decompressed so far is all there is: the walk will find it cut short
    return bytes(data)


def _problem(path: Path, data: bytes, whole: bool, skeleton: Skeleton) -> Optional[str]:
    """Why `pickle.load` could not read the file at `path` (in words that follow "it"), or None."""
    if not data:
        return "is empty" if Path(path).stat().st_size == 0 else "is compressed, but does not decompress"
    if skeleton.complete:
        return None
    if skeleton.opcodes == 0 or not data.startswith(PROTOCOL_2_PLUS):  # protocols 0 and 1 are rare now
        return f"is not a pickle: {_format_of(data)}"
    if (skeleton.stopped_by or "").startswith(UNSIZED_ARRAY) or not whole:  # the last byte must be STOP
        return None if _ends_in_stop(path) else "is truncated: it does not end the way a pickle ends"
    if any(words in (skeleton.stopped_by or "") for words in TRUNCATED_WORDS):
        return f"is truncated: its pickle stops after {len(data)} bytes, before its end"
    return f"is not a readable pickle: {skeleton.stopped_by}"


def _ends_in_stop(path: Path) -> bool:
    with open(path, "rb") as file:
        if compression_of(file.read(8)) is not None:
            return True  # compressed and bigger than the limit: the decompressor would notice the end
        file.seek(-1, 2)
        return file.read(1) == STOP


def _format_of(data: bytes) -> str:
    known = next((words for magic, words in OTHER_FORMATS.items() if data.startswith(magic)), None)
    return known or f"it starts with {data[:8]!r}"


def referenced_modules(data: bytes) -> Iterator[str]:
    """The module of every class or function the pickle names, in order, repeats included."""
    return (named.module for named in read_pickle(data).globals)


def inspect_pickle(path: Path, import_classes: bool = True) -> Artifact:
    data, whole = read_data(path, CHECK_LIMIT_BYTES)
    skeleton = read_pickle(data)
    modules = tuple(dict.fromkeys(named.module for named in skeleton.globals))
    packages = {module.split(".")[0] for module in modules}
    framework = next((package for package in FRAMEWORK_PACKAGES if package in packages), None)
    estimator = final_estimator(skeleton.top)
    return Artifact(
        format="joblib" if "joblib" in packages else "pickle",
        framework=framework,
        modules=modules,
        estimator=estimator.dotted if estimator else None,
        role=role_of(framework, estimator, import_classes),
        versions=_versions(skeleton.top),
        problem=_problem(path, data, whole, skeleton),
    )


def _versions(top: Any) -> dict[str, str]:
    """Training library versions the pickle records about itself (scikit-learn writes its own)."""
    state = top.state if isinstance(top, Built) else None
    version = state.get("_sklearn_version") if isinstance(state, dict) else None
    return {"scikit-learn": version} if isinstance(version, str) else {}

