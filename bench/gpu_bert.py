"""`python -m bench.gpu_bert`: a BERT-base text classifier served by conduit on a GPU, batching off
and on, 64 clients. Skips cleanly (exit 0) where there is no CUDA GPU; `--cpu` runs the same
bench on the CPU with a 2-layer BERT instead (a smoke run of the code path: minutes, not a result).

The model is BERT-base sized (12 layers, hidden 768, random weights from a config) with a tokenizer
built from a written vocab file, saved with save_pretrained: nothing is downloaded. Requests carry
one 40-word text each. The in-process rows show the limit: one text at a time vs 128 at a time
(the issue measured 127 vs 1,600 texts/s on an H100); the served endpoint should capture most of it.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from bench import run
from bench.conduit_adapter import ConduitEndpoint
from bench.models import BenchModel

WORDS = [f"word{i}" for i in range(2000)]
BATCHING = {"max_batch_size": 128, "max_latency_ms": 20}
CPU_BATCHING = {"max_batch_size": 16, "max_latency_ms": 20}  # 128 texts take a second on this CPU


def make_bert(folder: Path, on_gpu: bool = True) -> BenchModel:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, pipeline

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    layers = {} if on_gpu else {"num_hidden_layers": 2}
    config = BertConfig(vocab_size=len(WORDS) + 5, num_labels=2, **layers)  # BERT-base defaults otherwise
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    classifier = pipeline("text-classification", model=str(folder), device=0 if on_gpu else -1)
    rng = random.Random(0)
    text = " ".join(rng.choice(WORDS) for _ in range(40))
    return BenchModel(
        "bert", folder, "huggingface_pipeline", text,
        predict=lambda texts: classifier(texts, batch_size=len(texts)),
        batch_rows=128,
        stage={"model_type": "huggingface_pipeline", "task": "text-classification", "model": folder.name},
        hardware="A100" if on_gpu else "CPU",
    )


def contenders(model, plan, work, notes):
    batching = CPU_BATCHING if plan.mode == "bert-cpu" else BATCHING
    return [ConduitEndpoint(model, work), ConduitEndpoint(model, work, batching=batching)]


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m bench.gpu_bert")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cpu", action="store_true", help="no GPU: a 2-layer BERT on the CPU, to try the code path")
    parser.add_argument("--out", type=Path, help="folder for JSON and PNG (default: bench/results/<mode>)")
    args = parser.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("bench.gpu_bert skipped: no CUDA GPU here (--cpu runs a small model on the CPU)")
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="conduit-bert-") as folder:
        model = make_bert(Path(folder) / "bert_model", on_gpu=not args.cpu)
        mode = "bert-cpu" if args.cpu else "gpu"
        plan = run.Plan(mode, args.seconds, args.rounds, [model], in_process_calls=50,
                        mlserver=False, scenarios={"c64": 64})
        document = run.run(plan, args.out or run.RESULTS_DIR / mode, choose=contenders)
    print(run.report.table(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
