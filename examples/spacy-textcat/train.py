"""A blank English spaCy pipeline with a text classifier (trained a few steps) and an entity ruler.

Saved with nlp.to_disk as the folder spacy_model (a few seconds). The endpoint returns, per text,
its entities, category scores (POSITIVE / NEGATIVE) and tokens. CPU is the default for spaCy.
"""
from __future__ import annotations

import random
from pathlib import Path

import spacy
from spacy.training import Example

HERE = Path(__file__).resolve().parent

TRAINING = [
    ("I love this product, it works great", "POSITIVE"),
    ("Fantastic support from the conduit team", "POSITIVE"),
    ("What a wonderful, fast delivery", "POSITIVE"),
    ("This is terrible and broke after a day", "NEGATIVE"),
    ("Awful experience, I want a refund", "NEGATIVE"),
    ("The worst purchase I have made", "NEGATIVE"),
]
PRODUCTS = ["conduit", "BentoML", "KServe"]


def build() -> spacy.language.Language:
    random.seed(0)
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    textcat = nlp.add_pipe("textcat")
    for label in ("POSITIVE", "NEGATIVE"):
        textcat.add_label(label)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {name: name == label for name in ("POSITIVE", "NEGATIVE")}})
        for text, label in TRAINING
    ]
    optimizer = nlp.initialize(lambda: examples)
    ruler.add_patterns([{"label": "PRODUCT", "pattern": name} for name in PRODUCTS])  # initialize() clears them
    for _ in range(20):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer)
    return nlp


def main() -> None:
    build().to_disk(HERE / "spacy_model")
    print(f"wrote {HERE / 'spacy_model'}")


if __name__ == "__main__":
    main()
