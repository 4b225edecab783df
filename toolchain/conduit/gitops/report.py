"""A plan for people and for machines: text for a terminal, JSON for scripts, and a Markdown
table for a pull request's job summary."""
from __future__ import annotations

import json
from typing import Optional

from conduit.gitops.plan import ACTIONS, PlanEntry

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}
EMOJI = {"create": "🆕", "update": "🔄", "delete": "🗑️", "unchanged": "✔️"}
FORMATS = ("text", "json", "markdown")


def summary(entries: list[PlanEntry]) -> str:
    counts = {action: sum(e.action == action for e in entries) for action in ACTIONS}
    return (
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['unchanged']} unchanged"
    )


def as_text(entries: list[PlanEntry], changed_since: Optional[str]) -> str:
    if not entries:
        return "No conduit manifests found.\n"
    name_width = max(len(e.name) for e in entries)
    path_width = max(len(e.path) for e in entries)
    lines = [
        f"{SYMBOLS[e.action]} {e.action:<9} {e.name:<{name_width}}  {e.path:<{path_width}}  {e.reason}" for e in entries
    ]
    return "\n".join([*lines, f"Plan{_since(changed_since)}: {summary(entries)}."]) + "\n"


def as_json(entries: list[PlanEntry], changed_since: Optional[str]) -> str:
    document = {"changed_since": changed_since, "entries": [e.to_json() for e in entries]}
    return json.dumps(document, indent=2) + "\n"


def as_markdown(entries: list[PlanEntry], changed_since: Optional[str]) -> str:
    title = f"### conduit plan{_since(changed_since, markdown=True)}"
    if not entries:
        return f"{title}\n\nNo conduit manifests found.\n"
    rows = [
        f"| {EMOJI[e.action]} {e.action} | `{_cell(e.name)}` | `{_cell(e.path)}` | {_cell(e.reason)} |"
        for e in entries
    ]
    table = ["| action | deployment | manifest | reason |", "|---|---|---|---|", *rows]
    return "\n".join([title, "", *table, "", f"**{summary(entries)}**"]) + "\n"


RENDERERS = {"text": as_text, "json": as_json, "markdown": as_markdown}


def render(entries: list[PlanEntry], fmt: str, changed_since: Optional[str] = None) -> str:
    return RENDERERS[fmt](entries, changed_since)


def _since(ref: Optional[str], markdown: bool = False) -> str:
    if not ref:
        return " (no baseline: everything is new)"
    return f" since `{ref}`" if markdown else f" since {ref}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")
