"""Tiny real models, trained once per session in temp folders."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def iris() -> tuple[np.ndarray, np.ndarray]:
    return pytest.importorskip("sklearn.datasets").load_iris(return_X_y=True)


@pytest.fixture(scope="session")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return pytest.importorskip("sklearn.datasets").load_diabetes(return_X_y=True)


@pytest.fixture(scope="session")
def iris_mlp(iris: tuple) -> Any:
    """A 2-layer torch net trained a few steps on iris."""
    torch = pytest.importorskip("torch")

    torch.manual_seed(0)
    inputs, targets = torch.tensor(iris[0], dtype=torch.float32), torch.tensor(iris[1])
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT (hidden 32) and a tokenizer from a written vocab, saved with save_pretrained."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("hf_model")
    words = "i love hate this movie film great awful a the".split()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, num_labels=2,
        id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1}, initializer_range=0.5,
    )
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def spacy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """spacy.blank("en") with a textcat trained a few steps and an entity ruler, saved with to_disk."""
    spacy = pytest.importorskip("spacy")
    from spacy.training import Example

    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    textcat = nlp.add_pipe("textcat")
    for label in ("POS", "NEG"):
        textcat.add_label(label)
    data = [("great stuff", "POS"), ("love it", "POS"), ("awful stuff", "NEG"), ("hate it", "NEG")]
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {"POS": label == "POS", "NEG": label == "NEG"}})
        for text, label in data
    ]
    optimizer = nlp.initialize(lambda: examples)
    ruler.add_patterns([{"label": "ORG", "pattern": "Acme"}])
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    folder = tmp_path_factory.mktemp("spacy") / "spacy_model"
    nlp.to_disk(folder)
    return folder
