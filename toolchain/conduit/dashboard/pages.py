"""Server-rendered HTML: Jinja2 templates in `templates/`, autoescaped. A page and the fragments
its script swaps in every poll come from the same templates, so they never disagree."""
from __future__ import annotations

import datetime as _dt
from typing import Any, Optional

import jinja2

environment = jinja2.Environment(
    loader=jinja2.PackageLoader("conduit.dashboard", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def clock(seconds: Optional[float]) -> str:
    """Unix seconds as a UTC time of day with the date, or a dash."""
    if seconds is None:
        return "—"
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def as_json(value: Any) -> str:
    import json

    return json.dumps(value, indent=1)


environment.filters.update(clock=clock, as_json=as_json)


def render(template: str, **values: Any) -> str:
    return environment.get_template(template).render(**values)
