"""Does the model fit the GPU? The weights' size at the served dtype against the hardware's VRAM,
read from file sizes only (nothing is loaded): a Hugging Face folder's `*.safetensors` (else its
`*.bin`), scaled from the dtype its config stores to the `torch_dtype` the stage's options ask
for; an ONNX file (its initializers are nearly all of it); a torch `.pt`/`.pkl`. Every stage runs
in one process on one GPU, so their weights add up.

More than the VRAM is refused, naming the smallest hardware row that fits; more than
`WARN_SHARE` of it is a warning (activations, the CUDA context and a generation's KV cache need
the rest), naming the smallest row that leaves that room.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from conduit.hardware import HARDWARE, Hardware

GB = 10**9  # the table's "24 GB", taken as decimal: the conservative reading
WARN_SHARE = 0.8
DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1}
GPU_FRAMEWORK_SUFFIXES = (".onnx", ".pt", ".pth", ".pkl")


def weights_bytes(artifact: Path, options: Any = None) -> int:
    """The bytes the weights at `artifact` take on the GPU (0 when there is nothing to weigh)."""
    if artifact.is_dir():
        return _folder_weights(artifact, options if isinstance(options, dict) else {})
    return artifact.stat().st_size if artifact.suffix.lower() in GPU_FRAMEWORK_SUFFIXES and artifact.is_file() else 0


def _folder_weights(folder: Path, options: dict) -> int:
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    stored = sum(path.stat().st_size for path in files)
    stored_dtype, served_dtype = _config_dtype(folder), _dtype_name(options.get("torch_dtype", options.get("dtype")))
    if stored_dtype in DTYPE_BYTES and served_dtype in DTYPE_BYTES:
        return stored * DTYPE_BYTES[served_dtype] // DTYPE_BYTES[stored_dtype]
    return stored


def _config_dtype(folder: Path) -> Optional[str]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _dtype_name(config.get("torch_dtype", config.get("dtype"))) if isinstance(config, dict) else None


def _dtype_name(value: Any) -> Optional[str]:
    return value.removeprefix("torch.") if isinstance(value, str) else None


def gpu_rows() -> list[Hardware]:
    """The current GPU rows (deprecated ones left out), smallest VRAM first, table order within."""
    rows = [name for name, row in HARDWARE.items() if row.is_gpu and row.deprecated_use is None]
    return sorted(dict.fromkeys(rows), key=lambda name: HARDWARE[name].vram_gb)


def smallest_fitting(size: int, share: float = 1.0) -> Optional[Hardware]:
    return next((name for name in gpu_rows() if size <= HARDWARE[name].vram_gb * GB * share), None)


def verdict(size: int, hardware: Hardware) -> Optional[tuple[str, str, str]]:
    """(severity, message, hint) when `size` bytes of weights do not fit, or nearly fill, `hardware`."""
    vram = HARDWARE[hardware].vram_gb
    if not HARDWARE[hardware].is_gpu or size <= vram * GB * WARN_SHARE:
        return None
    weighs = f"the model's weights take {size / GB:.1f} GB"
    if size > vram * GB:
        bigger = smallest_fitting(size)
        hint = f"hardware: {bigger.value} ({HARDWARE[bigger].vram_gb} GB) is the smallest that fits" if bigger else (
            "no hardware row has that much VRAM: quantise the model or serve a smaller one")  # fmt: skip
        return "error", f"{weighs}, more than the {vram} GB of VRAM {hardware.value} has", hint
    roomy = smallest_fitting(size, WARN_SHARE)
    hint = f"hardware: {roomy.value} ({HARDWARE[roomy].vram_gb} GB) leaves room" if roomy else "leave room or quantise the model"
    share = f"{size / (vram * GB):.0%}"
    return "warning", f"{weighs}, {share} of the {vram} GB of VRAM {hardware.value} has: activations need the rest", hint
