"""The suggested fix for a deployment name: DNS-safe, at most 20 characters, and for a name that
is too long a shortening a person would write rather than a cut at the 20th character."""
from __future__ import annotations

import re

import pytest

from conduit.manifest.names import NAME_MAX, name_problem, suggest_name


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("Iris_Model", "iris-model"),
        ("IrisModel", "iris-model"),
        ("2fast", "m-2fast"),
        ("iris-", "iris"),
        ("Modèle_Iris", "modele-iris"),
        ("", "my-model"),
        # Too long: filler words go first...
        ("a-very-long-deployment-name", "long-deployment-name"),
        ("MyVeryFirstTorchScriptModel", "first-torch-script"),
        # ...then the usual abbreviations...
        ("IrisClassifierForProductionUse", "iris-clf-prod-use"),
        ("resnet50-image-classification", "resnet50-img-clf"),
        # ...then the inner vowels of the longest words, as few as it takes...
        ("fraud-detection-model-for-payments", "fraud-detect-pymnts"),
        # ...and only then letters off the end of the longest words.
        ("customer-churn-xgboost-regressor-v2", "cust-chrn-xgb-reg-v2"),
        ("abcdefghijklmnopqrstuvwxyz", "abcdfghjklmnpqrstvwx"),
    ],
)
def test_the_suggestion_word_for_word(name, suggested):
    assert suggest_name(name) == suggested


def test_dropping_a_leading_filler_still_starts_with_a_letter():
    assert suggest_name("the-2nd-generation-of-the-sentiment-model") == "m-2nd-gen-senti"


@pytest.mark.parametrize(
    "name",
    ["a-b-c-d-e-f-g-h-i-j-k-l-m-n", "12345678901234567890123", "x" * 40 + "-y", "Über_Großes_Modell_für_Produktion"],
)
def test_every_suggestion_is_an_allowed_name(name):
    suggested = suggest_name(name)
    assert name_problem(suggested) is None and len(suggested) <= NAME_MAX
    assert not re.search(r"--|-$", suggested)


def test_an_allowed_name_is_suggested_unchanged():
    assert suggest_name("long-deployment-name") == "long-deployment-name"
