"""A revision's supervisor started before its Bento exists (see `conduit.targets.supervisor`).

`conduit apply` starts one first thing. While apply validates, renders and builds on one core,
the standby imports BentoML's serving code on the other; handing it the revision then costs a
pipe write instead of a `bentoml serve` start-up. If apply needs no new revision (nothing
changed, the manifest or the build failed, Ctrl-C), apply stops it and removes its log. If the
standby is gone or its pipe broke, apply starts the revision the ordinary way.
`CONDUIT_STANDBY=0` turns it off.

Only the key's hash ever reaches it, with the order, as for any served process.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Optional

from conduit.serving.process import serve_env
from conduit.targets import processes
from conduit.targets.processes import SUPERVISOR_MODULE

if TYPE_CHECKING:
    from typing_extensions import Self

STANDBY_ENV = "CONDUIT_STANDBY"


class Standby:
    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.orders: IO[bytes] = process.stdin  # type: ignore[assignment]  # started with stdin=PIPE
        self.log_path = log_path
        self.handed = False

    @classmethod
    def start(cls, logs: Path) -> Optional[Standby]:
        if os.environ.get(STANDBY_ENV) == "0":
            return None
        log_path = logs / f"standby-{uuid.uuid4().hex[:12]}.log"
        command = processes.module_command(SUPERVISOR_MODULE, "--standby", str(log_path))
        # The key's hash comes with the order; until then the standby has none.
        process = processes.spawn_detached(command, log_path, serve_env(""), stdin=subprocess.PIPE)
        return cls(process, log_path)

    def hand(self, command: list[str], ready_url: str, log_path: Path, env: dict[str, str]) -> Optional[int]:
        """Give the standby its revision; returns its pid, or None if it cannot take it."""
        order = {"command": command, "ready_url": ready_url, "log": str(log_path), "env": env}
        try:
            self.orders.write((json.dumps(order) + "\n").encode())
            self.orders.close()
        except OSError:  # it died before its order: BrokenPipeError
            self.dismiss()
            return None
        self.handed = True
        return self.process.pid

    def dismiss(self) -> None:
        """No revision for it: stop it now (it has done nothing but import) and remove its log,
        so an apply that changed nothing leaves nothing behind."""
        if self.handed:
            return
        try:
            self.orders.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dismiss()
