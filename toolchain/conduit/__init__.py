"""conduit: declarative model deployments you run yourself.

    from conduit import Conduit, model_type, hardware, model_api_request
"""
from __future__ import annotations

__version__ = "0.1.0"

from conduit.hardware import Hardware
from conduit.model_types import ModelType

# Spelled as in the seed document: model_type.SKLEARN, hardware.A100.
model_type = ModelType
hardware = Hardware

__all__ = ["Conduit", "Hardware", "Manifest", "ModelType", "__version__", "hardware", "model_api_request", "model_type"]


def __getattr__(name: str):
    # Lazy: `import conduit` stays cheap (no BentoML, no httpx) until these are used.
    if name == "Conduit":
        from conduit.api import Conduit

        return Conduit
    if name == "Manifest":
        from conduit.manifest import Manifest

        return Manifest
    if name == "model_api_request":
        from conduit.client import model_api_request

        return model_api_request
    raise AttributeError(name)
