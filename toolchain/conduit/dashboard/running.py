"""Starting, finding and stopping the dashboard's process (`conduit dashboard`).

One dashboard per CONDUIT_HOME, on 127.0.0.1:CONDUIT_DASHBOARD_PORT (default 8766). The server
records {pid, port} in `$CONDUIT_HOME/run/dashboard.json` once bound; a record whose pid is not
the dashboard any more (a crash, a reboot) counts as not running. Its log:
`$CONDUIT_HOME/logs/dashboard.log`. It gets no plain API key in its environment: it needs none
until someone signs in.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

from conduit.errors import ConduitError
from conduit.keys import KEY_ENV
from conduit.targets.local import processes

MODULE = "conduit.dashboard.server"
PORT_ENV = "CONDUIT_DASHBOARD_PORT"
DEFAULT_PORT = 8766
START_TIMEOUT_S = 60.0  # starlette and uvicorn import in a second or two; a busy machine is slower


def state_file(home: Path) -> Path:
    return home / "run" / "dashboard.json"


def log_file(home: Path) -> Path:
    return home / "logs" / "dashboard.log"


def url_of(port: int) -> str:
    return f"http://127.0.0.1:{port}/"


def configured_port() -> int:
    text = os.environ.get(PORT_ENV) or str(DEFAULT_PORT)
    if not text.isdigit() or int(text) > 65535:
        raise ConduitError(f"{PORT_ENV}={text!r} is not a port: set it to a number from 1 to 65535")
    return int(text)


def running(home: Path) -> Optional[dict]:
    """{pid, port} of this home's dashboard when it runs, else None."""
    try:
        found = json.loads(state_file(home).read_text())
    except (OSError, ValueError):
        return None
    return found if processes.is_ours(found.get("pid"), MODULE) else None


def answers(port: int) -> bool:
    return processes.answers_ready(f"{url_of(port)}signin")


def ensure_running(home: Path) -> str:
    """The URL of this home's dashboard, started first when it does not run."""
    found = running(home)
    if found is not None and answers(found["port"]):
        return url_of(found["port"])
    port = configured_port()
    if processes.port_open(port):
        raise ConduitError(f"port {port} is taken by another program: set {PORT_ENV} to a free port and run conduit dashboard again")
    env = {key: value for key, value in os.environ.items() if key != KEY_ENV}
    process = processes.spawn_detached(processes.module_command(MODULE, "--port", str(port)), log_file(home), env)
    return url_of(wait_started(home, process))


def wait_started(home: Path, process) -> int:
    """The port the started server bound, once it answers; a clear error if it exits first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = processes.log_tail(log_file(home), 10)
            raise ConduitError(f"the dashboard exited at start (see {log_file(home)}):\n{tail}")
        found = running(home)
        if found is not None and found["pid"] == process.pid and answers(found["port"]):
            return found["port"]
        time.sleep(0.1)
    processes.stop(process.pid, MODULE)
    raise ConduitError(f"the dashboard did not answer within {START_TIMEOUT_S:.0f}s (see {log_file(home)})")


def stop(home: Path) -> bool:
    """Stop this home's dashboard; whether one ran."""
    found = running(home)
    if found is None:
        return False
    processes.stop(found["pid"], MODULE, grace_s=10.0)
    state_file(home).unlink(missing_ok=True)
    return True
