"""A tiny BERT text classifier (2 layers, hidden size 32) saved with save_pretrained as hf_model/.

The tokenizer comes from a vocabulary written here, so nothing is downloaded; the model is
trained for a few steps on six sentences (a few seconds), enough for sensible-looking scores.
Hardware stays at the Hugging Face default, AMPERE_A5000: real pipelines want a GPU. On a machine
without CUDA `conduit run` runs it on the CPU and warns once.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

HERE = Path(__file__).resolve().parent
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TRAINING = [
    ("i love this movie", 1),
    ("a great and fun film", 1),
    ("what a wonderful story", 1),
    ("i hate this movie", 0),
    ("a boring and awful film", 0),
    ("what a terrible story", 0),
]
LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


def write_tokenizer(folder: Path) -> BertTokenizerFast:
    words = sorted({word for text, _ in TRAINING for word in text.split()})
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + words) + "\n", encoding="utf-8")
    # from_pretrained reads vocab.txt from the folder in transformers 4 and 5 alike (the
    # constructor's vocab argument changed name between them).
    return BertTokenizerFast.from_pretrained(folder, do_lower_case=True)


def train(tokenizer: BertTokenizerFast) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=2,
        id2label=LABELS, label2id={label: index for index, label in LABELS.items()},
    )
    model = BertForSequenceClassification(config)
    batch = tokenizer([text for text, _ in TRAINING], padding=True, return_tensors="pt")
    labels = torch.tensor([label for _, label in TRAINING])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
    return model.eval()


def main() -> None:
    folder = HERE / "hf_model"
    shutil.rmtree(folder, ignore_errors=True)  # a stale tokenizer.json would win over the new vocab.txt
    folder.mkdir()
    tokenizer = write_tokenizer(folder)
    train(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()
