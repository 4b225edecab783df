"""Deployment name rules: a DNS-1035 label (what a Kubernetes Service and a KServe
InferenceService accept), at most 20 characters, and a suggested fix for a name that breaks them."""

from __future__ import annotations

import re
from typing import Optional

NAME_MAX = 20
NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$"


def suggest_name(name: str) -> str:
    """`Iris_Model` -> `iris-model`, `IrisModel` -> `iris-model`, `2fast` -> `m-2fast`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name)
    slug = re.sub(r"[^a-z0-9]+", "-", spaced.lower()).strip("-")
    if slug and not slug[0].isalpha():
        slug = f"m-{slug}"
    return slug[:NAME_MAX].rstrip("-") or "my-model"


def name_problem(name: str) -> Optional[str]:
    """Why `name` is not allowed, in plain words; None when it is fine."""
    if not name:
        return "name is empty"
    if len(name) > NAME_MAX:
        return f"name '{name}' is {len(name)} characters long; at most {NAME_MAX} are allowed"
    if re.search(r"[^a-z0-9-]", name):
        return f"name '{name}' may hold only lowercase letters, digits and hyphens"
    if not re.match(NAME_PATTERN, name):
        return f"name '{name}' must start with a letter and end with a letter or digit"
    return None
