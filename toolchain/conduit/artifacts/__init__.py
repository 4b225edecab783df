"""What is inside a model artifact, read without executing it: the one place that knows.

`inspect_artifact(path)` answers for a file or folder (None: nothing conduit serves); `init` picks
a model type from it, `validate` refuses what the runtime could not load, and the fork server
(`conduit.targets.local.preload`) imports the modules a pickle names. Nothing here unpickles, imports a
file's code or needs a framework; only scikit-learn's own classes may be imported, to ask them
what they are (`conduit.artifacts.roles`). Stdlib only, so the supervisor can import it cheaply;
`conduit.artifacts.pins` (the recorded versions as the Bento's pins, and the user's pins checked
against them) needs `packaging` and is imported on its own, by render and validate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from conduit.artifacts.formats import (
    inspect_folder,
    inspect_onnx,
    inspect_torch_file,
    inspect_xgboost_json,
    inspect_xgboost_ubj,
)
from conduit.artifacts.kinds import TYPE_FRAMEWORKS, Artifact, model_type_of
from conduit.artifacts.pickles import PICKLE_SUFFIXES, inspect_pickle, read_data, referenced_modules

READERS: dict[str, Callable[[Path], Optional[Artifact]]] = {
    **dict.fromkeys(PICKLE_SUFFIXES, inspect_pickle),
    ".json": inspect_xgboost_json,
    ".ubj": inspect_xgboost_ubj,
    ".onnx": inspect_onnx,
    ".pt": inspect_torch_file,
    ".pth": inspect_torch_file,
}


def inspect_artifact(path: Path, import_classes: bool = True) -> Optional[Artifact]:
    """What the file or folder at `path` holds, or None when it is no model conduit serves.
    `import_classes`: may ask scikit-learn about a pickled class (slower: it imports scikit-learn)."""
    path = Path(path)
    if path.is_dir():
        return inspect_folder(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None or not path.is_file():
        return None
    return inspect_pickle(path, import_classes=import_classes) if reader is inspect_pickle else reader(path)


__all__ = [
    "PICKLE_SUFFIXES",
    "TYPE_FRAMEWORKS",
    "Artifact",
    "inspect_artifact",
    "model_type_of",
    "read_data",
    "referenced_modules",
]
