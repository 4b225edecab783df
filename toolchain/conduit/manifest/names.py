"""Deployment name rules: a DNS-1035 label (what a Kubernetes Service and a KServe
InferenceService accept), at most 20 characters, and a suggested fix for a name that breaks them.

A name over the limit is shortened the way a person would, one gentler step at a time until it
fits: drop filler words, then use the usual abbreviations, then drop the inner vowels of the
longest words, and only then trim letters; the words stay in order and the result stays DNS-safe.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

NAME_MAX = 20
NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$"
# A project is a Kubernetes namespace on that target, so a DNS-1123 label (it may start with a digit).
PROJECT_MAX = 63
PROJECT_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DEFAULT_PROJECT = "default"

# Words a deployment name can lose: every deployment serves a model, so "model" says nothing either.
FILLER_WORDS = frozenset({"a", "an", "the", "of", "and", "for", "to", "with", "my", "our", "very", "new", "model"})
ABBREVIATIONS = {
    "classifier": "clf", "classification": "clf", "regressor": "reg", "regression": "reg",
    "deployment": "deploy", "production": "prod", "development": "dev", "staging": "stage",
    "experiment": "exp", "preprocessor": "prep", "pipeline": "pipe", "service": "svc",
    "transformer": "tfm", "detection": "detect", "detector": "detect", "recognition": "recog",
    "embedding": "embed", "embeddings": "embed", "generator": "gen", "generation": "gen",
    "language": "lang", "version": "v", "image": "img", "sentiment": "senti", "customer": "cust",
}
SHORT_WORD = 4  # a word this short loses letters only in the last step: `chrn` is no longer `churn`
Words = list[str]


def suggest_name(name: str) -> str:
    """`Iris_Model` -> `iris-model`, `IrisModel` -> `iris-model`, `2fast` -> `m-2fast`,
    `a-very-long-deployment-name` -> `long-deployment-name`."""
    words = _letter_first(_words(name))
    if _length(words) > NAME_MAX:
        words = _shortened(words)
    return "-".join(words)[:NAME_MAX].rstrip("-") or "my-model"


def _words(name: str) -> Words:
    # Accents come off rather than taking their letter with them: `Modèle` -> `modele`.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", ascii_name)
    return [word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word]


def _letter_first(words: Words) -> Words:
    # A DNS-1035 label starts with a letter: `2fast` becomes `m-2fast`, as in "model 2fast".
    return ["m", *words] if words and not words[0][0].isalpha() else words


def _length(words: Words) -> int:
    return len("-".join(words))


def _shortened(words: Words) -> Words:
    for step in (_without_fillers, _abbreviated, _without_inner_vowels, _trimmed):
        words = step(words)
        if _length(words) <= NAME_MAX:
            break
    return words


def _without_fillers(words: Words) -> Words:
    kept = [word for word in words if word not in FILLER_WORDS]
    return _letter_first(kept) if kept else words


def _abbreviated(words: Words) -> Words:
    return [ABBREVIATIONS.get(word, word) for word in words]


def _without_inner_vowels(words: Words) -> Words:
    """Longest word first, only as many words as it takes: `payments` -> `pymnts`."""
    words = list(words)
    for index in sorted(range(len(words)), key=lambda i: -len(words[i])):
        if _length(words) <= NAME_MAX or len(words[index]) <= SHORT_WORD:
            break
        words[index] = words[index][0] + re.sub(r"[aeiou]", "", words[index][1:])
    return words


def _trimmed(words: Words) -> Words:
    """A letter off the end of the longest word (the last of equals: first words say most)."""
    words = list(words)
    while _length(words) > NAME_MAX and max(map(len, words)) > 1:
        longest = max(reversed(range(len(words))), key=lambda i: len(words[i]))
        words[longest] = words[longest][:-1]
    return words


def name_problem(name: str) -> Optional[str]:
    """Why `name` is not allowed, in plain words; None when it is fine."""
    return _label_problem("name", name, NAME_MAX, NAME_PATTERN, "start with a letter and end with a letter or digit")


def project_problem(project: str) -> Optional[str]:
    """Why `project` is not allowed (a DNS label: it names a Kubernetes namespace); None when fine."""
    return _label_problem("project", project, PROJECT_MAX, PROJECT_PATTERN, "start and end with a letter or digit")


def _label_problem(key: str, value: str, most: int, pattern: str, ends: str) -> Optional[str]:
    if not value:
        return f"{key} is empty"
    if len(value) > most:
        return f"{key} '{value}' is {len(value)} characters long; at most {most} are allowed"
    if re.search(r"[^a-z0-9-]", value):
        return f"{key} '{value}' may hold only lowercase letters, digits and hyphens"
    if not re.match(pattern, value):
        return f"{key} '{value}' must {ends}"
    return None


def suggest_project(project: str) -> str:
    """`Team_A` -> `team-a`: the words in lowercase, joined by hyphens, cut to fit."""
    return "-".join(_words(project))[:PROJECT_MAX].rstrip("-") or DEFAULT_PROJECT
