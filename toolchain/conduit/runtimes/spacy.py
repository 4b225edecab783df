"""spaCy: a pipeline folder saved with `nlp.to_disk`; texts go through `nlp.pipe`.

The output is one spaCy Doc per text, so a post hook can use the full Doc API; the final response
turns each Doc into {text, entities: [{text, label, start, end}], cats: {label: score}, tokens}.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Optional

from conduit.errors import ModelLoadError
from conduit.runtimes import convert
from conduit.runtimes.base import CPU, Runtime, import_framework, require_folder, short_reason


class SpacyRuntime(Runtime):
    model_type: ClassVar[str] = "spacy"

    @classmethod
    def load(cls, stage: Any, artifact_path: Optional[Path], device: str = CPU) -> SpacyRuntime:
        spacy = import_framework("spacy", "spacy")
        artifact_path = require_folder(artifact_path)
        try:
            nlp = spacy.load(artifact_path)
        except (OSError, ValueError, KeyError) as exc:  # spaCy's E050/E053 etc. are OSError/ValueError
            raise ModelLoadError(
                f"{artifact_path.name} is not a spaCy pipeline folder saved with nlp.to_disk ({short_reason(exc)})"
            ) from exc
        return cls(nlp, device)

    def predict(self, batch: Any, parameters: dict[str, Any]) -> Any:
        return list(self.model.pipe(convert.to_texts(batch)))
