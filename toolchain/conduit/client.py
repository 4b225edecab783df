"""`model_api_request`: call a conduit (or Cerebrium-shaped) predict endpoint.

    model_api_request(endpoint, numpy_array_or_tensor_or_list, api_key)  # -> {"status_code", "data"}

Data may be a list, a numpy array, a torch tensor, or lists/dicts holding those; arrays and
tensors become plain lists with `.tolist()`. torch is never imported here: a tensor is recognised
by its type's module, so calling with a list stays cheap.

`files={"f": open(path, "rb")}` sends multipart: a `data` field (the JSON; left out when data is
None, a files-only request) plus one part per file. A file may be given as `requests` takes it: an
open file, bytes, a path (str or Path), or `(filename, file_or_bytes[, content_type])`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Optional, Union

import httpx

from conduit.errors import ConduitError
from conduit.runtimes.uploads import as_uploads

FileValue = Union[bytes, str, Path, IO[bytes], tuple]


class EndpointUnreachable(ConduitError):
    http_status = 503
    type = "unreachable"


def to_plain(data: Any) -> Any:
    """Lists, tuples and dicts are walked; numpy arrays/scalars and torch tensors become lists."""
    if isinstance(data, (list, tuple)):
        return [to_plain(item) for item in data]
    if isinstance(data, dict):
        return {key: to_plain(value) for key, value in data.items()}
    if type(data).__module__.startswith("torch"):
        return data.detach().cpu().tolist()
    if hasattr(data, "tolist"):  # numpy arrays and numpy scalars
        return data.tolist()
    return data


def _request_kwargs(data: Any, files: Optional[Mapping[str, FileValue]]) -> dict:
    body = json.dumps(to_plain(data))
    if not files:
        return {"content": body, "headers": {"Content-Type": "application/json"}}
    parts = {field: (upload.filename, bytes(upload), upload.content_type) for field, upload in as_uploads(files).items()}
    return {"data": {"data": body} if data is not None else {}, "files": parts}


def model_api_request(
    endpoint: str,
    data: Any,
    api_key: str,
    files: Optional[Mapping[str, FileValue]] = None,
    timeout: float = 30,
) -> dict:
    """POST `data` (and optional files, sent as multipart) to `endpoint` with the key in
    `Authorization`. Returns {"status_code": int, "data": the JSON response (or its text)}."""
    kwargs = _request_kwargs(data, files)
    headers = {"Authorization": api_key, **kwargs.pop("headers", {})}
    try:
        response = httpx.post(endpoint, headers=headers, timeout=timeout, **kwargs)
    except httpx.TransportError as exc:
        raise EndpointUnreachable(f"could not reach {endpoint}: {exc}") from None
    try:
        payload: Any = response.json()
    except ValueError:
        payload = response.text
    return {"status_code": response.status_code, "data": payload}
