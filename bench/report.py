"""Aggregate interleaved rounds, compute ratios to conduit, print the table, write JSON and a PNG."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

METRICS = ("rps", "p50_ms", "p99_ms")
# CPU the server's processes spent per request (user + system, all its processes): steadier than
# req/s on a shared host, since a neighbour's load stretches time but not this work.
CPU = "cpu_ms_per_req"


def aggregate(samples: list[dict]) -> list[dict]:
    """One row per (model, scenario, contender): the median of its rounds."""
    groups: dict[tuple, list[dict]] = {}
    for sample in samples:
        groups.setdefault((sample["model"], sample["scenario"], sample["contender"]), []).append(sample)
    rows = []
    for (model, scenario, contender), rounds in groups.items():
        row = {"model": model, "scenario": scenario, "contender": contender, "clients": rounds[0]["clients"],
               "rounds": len(rounds), "errors": sum(r["errors"] for r in rounds),
               "requests": sum(r["requests"] for r in rounds)}
        row.update({metric: round(statistics.median(r[metric] for r in rounds), 3) for metric in METRICS})
        row[CPU] = round(statistics.median(r.get(CPU, 0.0) for r in rounds), 4)
        rows.append(row)
    return rows


def add_ratios(rows: list[dict], reference: str) -> None:
    """`<metric>_vs_ref`: this contender's metric / the reference's, same model and scenario."""
    refs = {(r["model"], r["scenario"]): r for r in rows if r["contender"] == reference}
    for row in rows:
        ref = refs.get((row["model"], row["scenario"]))
        for metric in METRICS:
            value = ref and ref[metric]
            row[f"{metric}_vs_ref"] = round(row[metric] / value, 3) if value else None


def ratios_finite(rows: list[dict]) -> bool:
    values = [row[f"{m}_vs_ref"] for row in rows for m in METRICS if row.get(f"{m}_vs_ref") is not None]
    return bool(values) and all(math.isfinite(v) and v > 0 for v in values)


def table(document: dict) -> str:
    reference = document["reference"]
    lines = [f"ratios are contender / {reference}, same model and scenario, same run (interleaved)", ""]
    header = f"{'model':6} {'scenario':10} {'contender':22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}" \
             f" {'req/s x':>8} {'p50 x':>7} {'p99 x':>7} {'CPU ms/req':>10} {'err':>4}"
    lines += [header, "-" * len(header)]
    for row in sorted(document["rows"], key=lambda r: (r["model"], r["clients"], r["scenario"], r["contender"])):
        lines.append(
            f"{row['model']:6} {row['scenario']:10} {row['contender']:22} {row['rps']:9.1f} {row['p50_ms']:8.2f}"
            f" {row['p99_ms']:8.2f} {_x(row['rps_vs_ref']):>8} {_x(row['p50_ms_vs_ref']):>7}"
            f" {_x(row['p99_ms_vs_ref']):>7} {row.get(CPU, 0.0):10.3f} {row['errors']:4d}")
    lines += ["", "in-process (the limit, no HTTP):"]
    for key, timing in document["in_process"].items():
        lines.append(f"  {key:12} p50 {timing['p50_ms']:.3f} ms  p99 {timing['p99_ms']:.3f} ms  {timing['rps']:.0f} calls/s")
    lines += ["", "cold start / deploy (seconds):"]
    for entry in document["cold_start"]:
        lines.append(f"  {entry['model']:6} {entry['contender']:14} {entry['what']:50} {entry['seconds']:.2f}")
    for note in document.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def write_json(document: dict, path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False))


def write_chart(document: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in document["rows"]})
    figure, axes = plt.subplots(2, len(models), figsize=(6.5 * len(models), 7.5), squeeze=False)
    for column, model in enumerate(models):
        rows = [r for r in document["rows"] if r["model"] == model]
        for line, metric in enumerate(("rps", "p99_ms")):
            _bars(axes[line][column], rows, metric, f"{model}: {'requests/s' if metric == 'rps' else 'p99 latency (ms)'}")
    figure.suptitle(f"conduit bench ({document['meta']['mode']}, {document['meta']['started']}): noisy shared host")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axis, rows: list[dict], metric: str, title: str) -> None:
    scenarios = sorted({r["scenario"] for r in rows}, key=lambda s: min(r["clients"] for r in rows if r["scenario"] == s))
    contenders = sorted({r["contender"] for r in rows})
    width = 0.8 / max(len(contenders), 1)
    for index, contender in enumerate(contenders):
        values = {r["scenario"]: r[metric] for r in rows if r["contender"] == contender}
        positions = [s + index * width for s in range(len(scenarios))]
        axis.bar(positions, [values.get(s, 0) for s in scenarios], width, label=contender)
    axis.set_xticks([s + 0.4 - width / 2 for s in range(len(scenarios))], scenarios)
    axis.set_title(title)
    axis.legend(fontsize=7)
