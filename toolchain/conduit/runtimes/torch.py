"""PyTorch: a whole module pickled with cloudpickle (`.pkl`) or a TorchScript file (`.pt`).

`torch.load` defaults to `weights_only=True` and cannot load a whole module, so `.pkl` goes through
cloudpickle; `.pt` must be TorchScript (`torch.jit.script(model).save(path)` or `torch.jit.trace`).
The model runs in eval mode under `torch.inference_mode()`; outputs come back as numpy arrays on
the CPU so the next stage (xgboost, sklearn) can take them directly.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar, Optional

from conduit.errors import ModelLoadError
from conduit.runtimes import convert
from conduit.runtimes.base import CPU, Runtime, import_framework, require_file, short_reason
from conduit.runtimes.pickles import load_pickle


class TorchRuntime(Runtime):
    model_type: ClassVar[str] = "torch"
    uses_device: ClassVar[bool] = True

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> TorchRuntime:
        torch = import_framework("torch", "torch")
        artifact_path = require_file(artifact_path)
        is_torchscript = artifact_path.suffix == ".pt"
        module = _load_jit(torch, artifact_path, device) if is_torchscript else load_pickle(artifact_path)
        if not callable(module):
            raise ModelLoadError(
                f"{artifact_path.name} holds a {type(module).__name__}, not a callable model "
                "(a state_dict cannot be served: pickle the whole module with cloudpickle)"
            )
        if isinstance(module, torch.nn.Module):
            module = module.to(device).eval()
        return cls(module, device)

    @classmethod
    def cuda_available(cls) -> bool:
        torch = import_framework("torch", "torch")
        return torch.cuda.is_available()

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        import torch

        tensor = self._tensor(torch, batch)
        with torch.inference_mode():
            output = self.model(tensor)
        return _to_numpy(output)

    def _tensor(self, torch: Any, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            tensor = batch if batch.ndim > 1 else batch.unsqueeze(0)
            return tensor.to(self.device)
        array = convert.to_array(batch, "float64")
        return torch.from_numpy(array).to(self.device, dtype=_input_dtype(torch, self.model))


def _load_jit(torch: Any, path: Path, device: str) -> Any:
    require_file(path)
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated upstream, but it is the seed's .pt format
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
            return torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            f"{path.name} is not a TorchScript file ({short_reason(exc)}): save the model with "
            "torch.jit.script(model).save(path), or pickle the whole module with cloudpickle as a .pkl"
        ) from exc


def _input_dtype(torch: Any, model: Any) -> Any:
    """The dtype of the model's first floating parameter (float32 for a model without parameters).

    JSON numbers always become this floating dtype; a model that takes integer ids (an embedding)
    gets them from a pre hook that returns a tensor, which is passed through unchanged.
    """
    parameters = model.parameters() if hasattr(model, "parameters") else []
    return next((p.dtype for p in parameters if p.is_floating_point()), torch.float32)


def _to_numpy(output: Any) -> Any:
    """Tensors -> numpy (on the CPU), keeping tuples and dicts of outputs as they are."""
    if hasattr(output, "detach"):
        return output.detach().cpu().numpy()
    if isinstance(output, (tuple, list)):
        return type(output)(_to_numpy(item) for item in output)
    if isinstance(output, dict):
        return {key: _to_numpy(item) for key, item in output.items()}
    return output
