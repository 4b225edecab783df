from conduit.manifest.model import API_VERSION, Batching, Manifest, Stage

__all__ = ["API_VERSION", "Batching", "Manifest", "Stage"]
