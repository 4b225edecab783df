"""Uploaded files as `pre` hooks receive them, and the ways a caller may hand one over.

A hook gets `files` as {field name: UploadedFile}. An UploadedFile *is* the file's bytes (a `bytes`
subclass, so `files["f"].decode()` and `json.loads(files["f"])` work), with the `filename` and
`content_type` the client sent as attributes. The same shape comes from every way in: a multipart
request, `conduit run --file NAME=PATH`, and `Conduit.run(data, files=...)`.

`as_upload` accepts what `requests`/`httpx` accept in `files=`: bytes, an open binary file, a
path (str or Path: conduit reads it), or a tuple `(filename, bytes_or_file[, content_type])`.
"""
from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from conduit.errors import UsageError

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class UploadedFile(bytes):
    """One uploaded file: its bytes, plus `filename` and `content_type` (never None)."""

    filename: str
    content_type: str

    def __new__(cls, content: bytes, filename: str = "", content_type: Optional[str] = None) -> UploadedFile:  # noqa: PYI034 (3.9 has no typing.Self)
        upload = super().__new__(cls, content)
        upload.filename = filename
        upload.content_type = content_type or guess_content_type(filename)
        return upload

    def __reduce__(self) -> Any:  # pickling (a thread or process hop) keeps the attributes
        return (UploadedFile, (bytes(self), self.filename, self.content_type))


def guess_content_type(filename: str) -> str:
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    return guessed or DEFAULT_CONTENT_TYPE


def as_upload(field: str, value: Any) -> UploadedFile:
    """Any accepted form of one file -> UploadedFile; anything else is a UsageError naming `field`."""
    if isinstance(value, UploadedFile):
        return value
    if isinstance(value, tuple) and 2 <= len(value) <= 3:
        filename, content = str(value[0]), value[1]
        content_type = value[2] if len(value) == 3 else None
        return UploadedFile(_content(field, content), filename, content_type)
    return UploadedFile(_content(field, value), _filename(value) or field)


def as_uploads(files: Optional[Mapping[str, Any]]) -> dict[str, UploadedFile]:
    return {str(field): as_upload(str(field), value) for field, value in (files or {}).items()}


def _content(field: str, value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (str, Path)):
        try:
            return Path(value).read_bytes()
        except OSError as exc:
            raise UsageError(f"file {field!r}: cannot read {value}: {exc.strerror or exc}") from None
    if callable(getattr(value, "read", None)):
        content = value.read()
        return content.encode("utf-8") if isinstance(content, str) else bytes(content)
    raise UsageError(
        f"file {field!r}: expected bytes, a path, an open file or (filename, file[, content_type]), "
        f"got {type(value).__name__}"
    )


def _filename(value: Any) -> str:
    """The name a path or an open file carries (`open(path, "rb").name`), else ''."""
    name = value if isinstance(value, (str, Path)) else getattr(value, "name", None)
    return Path(name).name if isinstance(name, (str, Path)) else ""
