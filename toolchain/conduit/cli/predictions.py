"""`conduit predictions NAME [filters] [--count | --json | --export FILE]`: the prediction log.

Filters: `--id`, `--run-id`, `--since`/`--until` (ISO times or ages: 10m, 2h, 7d), `--status`.
Shown: the newest `--limit` records (default 50), oldest first. `--count` prints only how many
match and `--export` writes every match (or the newest `--limit`, when given) to .jsonl or .parquet.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional

import click

DEFAULT_LIMIT = 50
COLUMNS_SHOWN = ("TIME", "STATUS", "REV", "PREDICTION_ID", "RUN_ID", "LATENCY_MS", "OUTPUT / ERROR")
WIDEST_OUTPUT = 60


@click.command("predictions")
@click.argument("name")
@click.option("--id", "prediction_id", help="One prediction id (as a 200 answer's prediction_ids).")
@click.option("--run-id", help="Every record of one request.")
@click.option("--since", help="From this time: ISO (2026-12-01T20:00:00, UTC) or an age (10m, 2h, 7d).")
@click.option("--until", help="Up to this time, written as --since.")
@click.option("--status", type=int, help="Only answers with this HTTP status.")
@click.option("--limit", type=click.IntRange(min=1), help=f"The newest N records (shown: default {DEFAULT_LIMIT}).")
@click.option("--count", "only_count", is_flag=True, help="Print only the number of matching records.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON list.")
@click.option("--export", "export_to", type=click.Path(dir_okay=False, path_type=Path), help="Write them to FILE (.jsonl or .parquet).")
def command(
    name: str,
    prediction_id: Optional[str],
    run_id: Optional[str],
    since: Optional[str],
    until: Optional[str],
    status: Optional[int],
    limit: Optional[int],
    only_count: bool,
    as_json: bool,
    export_to: Optional[Path],
) -> int:
    """Show, count or export the requests a deployment answered."""
    from conduit import predictions

    query = predictions.Query(
        prediction_id, run_id,
        predictions.parse_time(since) if since else None,
        predictions.parse_time(until) if until else None,
        status,
        limit if limit is not None or export_to is not None else DEFAULT_LIMIT,
    )
    with contextlib.closing(predictions.open_log(name)) as connection:
        if only_count:
            click.echo(predictions.count(connection, query))
            return 0
        records = predictions.select(connection, query)
    if export_to is not None:
        predictions.export(records, export_to)
        click.echo(f"Wrote {len(records)} record{'s' if len(records) != 1 else ''} to {export_to}")
    elif as_json:
        click.echo(json.dumps(records, indent=2))
    else:
        click.echo(table(records) if records else "No records match.")
    return 0


def table(records: list[dict]) -> str:
    from conduit.cli.status import table as aligned

    return aligned([COLUMNS_SHOWN] + [row(item) for item in records])


def row(item: dict) -> tuple[str, ...]:
    error = item["error"]
    said = f"{error['type']}: {error['message']}" if error else json.dumps(item["output"])
    said = said if len(said) <= WIDEST_OUTPUT else said[: WIDEST_OUTPUT - 1] + "…"
    shown = (item["time"], item["status"], item["revision"], item["prediction_id"], item["run_id"], round(item["latency_ms"], 2), said)
    return tuple("-" if value is None else str(value) for value in shown)
