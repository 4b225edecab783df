"""What the pages show, read from the local target without waking anything: status from the
store, the log's tail from its file, predictions from the prediction log. Never a predict call
(a deployment scaled to zero stays there; only the try-it form calls the endpoint).

Replica counts and the last request time come from the gateway's status fields where they exist
(`replicas_ready`, `replicas_desired`, `last_request_at`), read with getattr: older statuses lack them.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Optional

from conduit import predictions
from conduit.dashboard import charts
from conduit.errors import ConduitError

LOG_LINES = 200
LOG_BYTES = 256 * 1024  # read at most this much of a log's end, however long it grew
RECENT_PREDICTIONS = 20


def state_class(state: str) -> str:
    """A CSS class for a state: its first word (`serving`, `scaled`, `starting`, `failed`, `down`)."""
    return "state-" + (state.split() or ["unknown"])[0].strip("(),").lower()


def replicas(status: Any) -> Optional[str]:
    """`ready/desired`, or None where the status does not count replicas."""
    ready, desired = getattr(status, "replicas_ready", None), getattr(status, "replicas_desired", None)
    if ready is None:
        return None
    return f"{ready}/{desired}" if desired is not None else str(ready)


def deployment(status: Any) -> dict:
    serving = status.serving
    return {
        "name": status.record.name,
        "state": status.state,
        "state_class": state_class(status.state),
        "replicas": replicas(status),
        "endpoint": status.endpoint,
        "serving_revision": serving.revision if serving is not None else None,
        # The gateway's own clock where it has one, else the prediction log's newest record.
        "last_request_at": getattr(status, "last_request_at", None) or charts.last_request(status.record.name),
        "warnings": list(status.warnings),
    }


def revisions(status: Any) -> list[dict]:
    """Newest first; a rollback is offered to every revision that served and serves no more."""
    rows = []
    for revision in reversed(status.revisions):
        rows.append({
            "revision": revision.revision,
            "tag": revision.tag,
            "state": revision.state,
            "state_class": state_class(revision.state),
            "created_at": revision.created_at,
            "note": revision.note,
            "warnings": list(revision.warnings),
            "can_roll_back": revision.state == "archived",
        })
    return rows


def log_tail(path: Optional[Path], lines: int = LOG_LINES) -> str:
    """The last `lines` lines of a log, reading only its last LOG_BYTES."""
    if path is None or not path.is_file():
        return ""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - LOG_BYTES))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def recent_predictions(name: str, limit: int = RECENT_PREDICTIONS) -> list[dict]:
    """The newest records, newest first; none when the deployment has no prediction log yet."""
    return list(reversed(find(name, predictions.Query(limit=limit))))


def prediction(name: str, prediction_id: str) -> Optional[dict]:
    found = find(name, predictions.Query(prediction_id=prediction_id.strip(), limit=1))
    return found[0] if found else None


def find(name: str, query: predictions.Query) -> list[dict]:
    try:
        connection = predictions.open_log(name)
    except ConduitError:  # no log yet: nothing to show
        return []
    try:
        return predictions.select(connection, query)
    except sqlite3.OperationalError:  # the writer has not made its table yet
        return []
    finally:
        connection.close()
