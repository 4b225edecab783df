"""The artifact's own library versions as requirement pins, and the user's pins checked against them.

An artifact records the library that wrote it (`conduit.artifacts`: `Artifact.versions`), exactly
("1.6.1": a scikit-learn pickle, an XGBoost model, a Hugging Face config) or as a range (a spaCy
pipeline's ">=3.8.0,<3.9.0"). Render pins that version in place of the one installed here, so the
model is served by the library that wrote it, locally and in the image; a range keeps the installed
version when it falls inside. A user's requirements_file that contradicts the artifact is refused
at validate (`contradictions`), naming both versions; one that names a package the artifact does
not decide wins over the version installed here (`user_names`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


def canonical_name(name: str) -> str:
    """A distribution's name as PEP 503 compares them (`Scikit_Learn` -> `scikit-learn`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# The distribution an artifact's library ships as, where it ships under several names: a Bento
# installs xgboost-cpu (no NCCL); a user may pin either.
ALIASES = {"xgboost": ("xgboost-cpu", "xgboost")}


def is_exact(version: str) -> bool:
    return version[:1].isdigit()


def requirement(name: str, version: Optional[str]) -> str:
    """`name==1.6.1` (a local label such as torch's `+cpu` dropped: PyPI hosts no such build),
    `name>=3.8.0,<3.9.0` for a range, or the bare name."""
    if not version:
        return name
    return f"{name}=={version.split('+', 1)[0]}" if is_exact(version) else f"{name}{version}"


def with_trained_versions(packages: dict[str, Optional[str]], trained: dict[str, str]) -> dict[str, Optional[str]]:
    """`packages` (distribution -> version installed here) with each artifact's recorded version
    in place of the installed one (a range only where the installed version falls outside it)."""
    pinned = dict(packages)
    for library, version in trained.items():
        name = distribution(library, pinned)
        if is_exact(version) or not _within(pinned.get(name), version):
            pinned[name] = version
    return dict(sorted(pinned.items()))


def distribution(library: str, packages: dict[str, Optional[str]]) -> str:
    """The name `library` has among `packages` (xgboost -> xgboost-cpu), else its own."""
    return next((name for name in ALIASES.get(library, ()) if name in packages), library)


def _within(installed: Optional[str], allowed: str) -> bool:
    try:
        return installed is not None and Version(installed) in SpecifierSet(allowed)
    except (InvalidVersion, InvalidSpecifier):
        return False


def user_requirements(text: str) -> list[Requirement]:
    """The requirements a requirements file states (options, URLs and unparsable lines left out)."""
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            found.append(Requirement(line))
        except InvalidRequirement:
            continue
    return found


def user_names(text: str) -> set[str]:
    return {canonical_name(wanted.name) for wanted in user_requirements(text)}


def contradictions(text: str, trained: dict[str, str]) -> list[tuple[Requirement, str, str]]:
    """(the user's requirement, the library, the version the artifact records) for each user pin
    that the artifact's exact version does not satisfy."""
    exact = {canonical_name(name): (library, version) for library, version in trained.items() if is_exact(version)
             for name in (library, *ALIASES.get(library, ()))}  # fmt: skip
    found = []
    for wanted in user_requirements(text):
        library, version = exact.get(canonical_name(wanted.name), (None, None))
        if library and version and wanted.specifier and not wanted.specifier.contains(version, prereleases=True):
            found.append((wanted, library, version))
    return found


def trained_versions(paths: list[Path]) -> dict[str, str]:
    """The library versions the artifacts at `paths` record (read, never run); the first wins."""
    from conduit.artifacts import inspect_artifact

    found: dict[str, str] = {}
    for path in paths:
        artifact = inspect_artifact(path, import_classes=False) if path.exists() else None
        for library, version in (artifact.versions if artifact else {}).items():
            found.setdefault(library, version)
    return found
