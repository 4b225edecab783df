"""conduit's endpoint as a contender: a thin adapter over whatever of conduit exists.

Strategies, best first (the run records which one it used):
- "apply":  `conduit.targets.local.apply` (the Python API the CLI's `conduit apply` calls, run in a
            child with the home's environment: `python -m bench.conduit_adapter apply FILE`) into
            a temporary CONDUIT_HOME, whose one gateway listens on a free CONDUIT_PORT: the real
            user path. Cold start = apply to first prediction; `reapply()` times a second apply
            with nothing changed. `conduit-direct` calls the deployment's replica on its own
            port, read from the gateway's `run/gateway/state.json`, past the gateway.
- "render": conduit.render -> the build context, served by `bentoml serve service:<Class>` with the
            environment conduit's local target gives it (conduit.targets.local.bentoml_serving.serve_env).
            No build step and no gateway, so it is the same service, started more cheaply than apply.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

from bench.contenders import Contender, base_env
from bench.models import BenchModel
from bench.servers import free_port

API_KEY = "bench-key-0123456789abcdef"  # a throwaway key for a throwaway CONDUIT_HOME
ENDPOINT_PATTERN = re.compile(r"https?://127\.0\.0\.1:\d+/\S*")
# The bench's own interpreter: the Bento's environment then has the versions the pickles were made with.
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
# One replica, always up: `conduit-direct` and the gateway then hit the same one.
ONE_REPLICA = {"min_replicas": 1, "max_replicas": 1}


def strategy() -> str | None:
    forced = os.environ.get("BENCH_CONDUIT_VIA")  # "apply" or "render": compare the two paths
    if forced:
        return forced
    if importlib.util.find_spec("conduit.targets.local.gateway") is not None:
        return "apply"
    if importlib.util.find_spec("conduit.render") is not None:
        return "render"
    return None


class ConduitHome:
    """One CONDUIT_HOME and the port of its one gateway; `extra_env` reaches the gateway (it is
    started by the first apply), e.g. CONDUIT_WARM_START=0. `at` gives every contender of a
    folder the same one."""

    made: ClassVar[dict[Path, ConduitHome]] = {}

    def __init__(self, path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.path, self.port, self.extra_env = path, free_port(), extra_env or {}

    @classmethod
    def at(cls, path: Path, extra_env: dict[str, str] | None = None) -> ConduitHome:
        if path not in cls.made:
            cls.made[path] = cls(path, extra_env)
        return cls.made[path]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "CONDUIT_HOME": str(self.path), "CONDUIT_PORT": str(self.port), **self.extra_env}

    def call(self, env: dict[str, str], action: str, *args: str) -> subprocess.CompletedProcess:
        """`action` (apply FILE, delete NAME, stop-gateway) with the Python API, in a child."""
        command = [sys.executable, "-m", "bench.conduit_adapter", action, *args]
        return subprocess.run(command, env=self.env(env), capture_output=True, text=True, timeout=600, check=False,
                              cwd=Path(__file__).resolve().parents[1])

    def state(self) -> dict:
        """What the gateway last wrote ({} before it first did)."""
        try:
            return json.loads((self.path / "run" / "gateway" / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def replicas(self, name: str, state: str | None = None) -> list[dict]:
        rows = [row for row in self.state().get("replicas", []) if row["name"] == name]
        return [row for row in rows if state is None or row["state"] == state]

    def deployment(self, name: str) -> dict:
        return self.state().get("deployments", {}).get(name, {})

    def close(self) -> None:
        """Stop the gateway (and every replica) even where a deployment failed to apply."""
        if (self.path / "run" / "gateway" / "keeper.json").exists():
            self.call(base_env(self.path), "stop-gateway")

    @classmethod
    def close_all(cls) -> None:
        for home in cls.made.values():
            home.close()
        cls.made.clear()


class ConduitEndpoint(Contender):
    """conduit serving the model; `batching` is the manifest's batching block (None: off);
    `scaling` its min_replicas/max_replicas/cooldown (default ONE_REPLICA); `home` the
    CONDUIT_HOME it is applied into (default: the one of `work`, shared by every contender there
    without `extra_env`)."""

    def __init__(self, model: BenchModel, work: Path, batching: dict | None = None, cpu: int = 2,
                 extra_env: dict[str, str] | None = None, name: str | None = None,
                 scaling: dict | None = None, home: ConduitHome | None = None) -> None:
        super().__init__(model, work)
        self.batching, self.cpu, self.extra_env, self._name = batching, cpu, extra_env or {}, name
        self.scaling = scaling or ONE_REPLICA
        self.strategy = strategy()
        self.auth = API_KEY
        self.deploy_name = f"b-{model.key}-{self.name.replace('conduit', 'c')}".replace("+", "-")[:20].rstrip("-")
        self.folder = work / self.deploy_name
        # `extra_env` reaches replicas through the gateway's environment: a home (a gateway) of its own.
        self.conduit_home = home or ConduitHome.at(
            work / (f"conduit-home-{self.deploy_name}" if self.extra_env else "conduit-home"), self.extra_env)
        self.home = self.conduit_home.path
        self.first_prediction_s: float | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name or ("conduit-batch" if self.batching else "conduit")

    def manifest_document(self) -> dict:
        document = {
            "name": self.deploy_name,
            "flow": [self.model.stage or {"model_type": self.model.conduit_model_type, "path": self.model.artifact.name}],
            "hardware": self.model.hardware,
            "cpu": self.cpu,
            "python_version": PYTHON_VERSION,
            **self.scaling,
        }
        if self.batching:
            document["batching"] = dict(self.batching)
        return document

    def start(self) -> float:
        if self.strategy is None:
            raise RuntimeError("conduit has neither the local target's gateway nor conduit.render yet")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / self.model.artifact.name
        if self.model.artifact.is_dir():
            shutil.copytree(self.model.artifact, target, dirs_exist_ok=True)
        else:
            shutil.copy2(self.model.artifact, target)
        started = time.perf_counter()
        ready_s = self._apply() if self.strategy == "apply" else self._render_and_serve()
        self.predict_once()
        self.first_prediction_s = time.perf_counter() - started
        return ready_s

    # -- apply ------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return self.conduit_home.env({**base_env(self.work), "CONDUIT_API_KEY": API_KEY, **self.extra_env})

    def _manifest_path(self) -> Path:
        from conduit.manifest.dump import to_yaml
        from conduit.manifest.model import Manifest

        path = self.folder / "conduit.yaml"
        path.write_text(to_yaml(Manifest.model_validate(self.manifest_document())))
        return path

    def _conduit(self, action: str, *args: str) -> subprocess.CompletedProcess:
        return self.conduit_home.call({**base_env(self.work), **self.extra_env}, action, *args)

    def _apply(self) -> float:
        started = time.perf_counter()
        applied = self._conduit("apply", str(self._manifest_path()))
        if applied.returncode != 0:
            raise RuntimeError(f"conduit apply failed: {applied.stdout[-800:]}{applied.stderr[-800:]}")
        found = ENDPOINT_PATTERN.findall(applied.stdout)
        if not found:
            raise RuntimeError(f"conduit apply printed no endpoint: {applied.stdout[-800:]}")
        self.url = found[-1].rstrip(".,;)")
        return time.perf_counter() - started

    def reapply(self) -> float | None:
        """Seconds for `conduit apply` again with nothing changed (apply strategy only)."""
        if self.strategy != "apply":
            return None
        started = time.perf_counter()
        applied = self._conduit("apply", str(self.folder / "conduit.yaml"))
        if applied.returncode != 0:
            raise RuntimeError(f"conduit re-apply failed: {applied.stderr[-800:]}")
        return time.perf_counter() - started

    def stop(self) -> None:
        """Delete the deployment; the gateway stops once its home serves nothing else."""
        if self.strategy == "apply" and self.url:
            self._conduit("delete", self.deploy_name)
            self.url = ""
        super().stop()

    # -- render + bentoml serve -----------------------------------------------------------------------

    def _render_and_serve(self) -> float:
        from conduit.manifest.model import Manifest
        from conduit.render import render
        from conduit.serving.auth import key_sha256
        from conduit.targets.local.bentoml_serving import serve_env

        manifest = Manifest.model_validate(self.manifest_document()).with_base_dir(self.folder)
        context = render(manifest, self.work / "bentos").path
        service = re.search(r'service:\s*"([^"]+)"', (context / "bentofile.yaml").read_text()).group(1)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/predict"
        command = [sys.executable, "-m", "bentoml", "serve", service, "--host", "127.0.0.1",
                   "--port", str(port), "--working-dir", str(context)]
        env = serve_env(key_sha256(API_KEY), base=self.env())
        return self._launch(command, env, f"http://127.0.0.1:{port}/readyz", cwd=context)

    def results(self, response: dict) -> list:
        return response["result"]

    def replica_pids(self) -> list[int]:
        return [row["pid"] for row in self.conduit_home.replicas(self.deploy_name)]

    def gateway_pid(self) -> int | None:
        return self.conduit_home.state().get("pid")

    def process_roots(self) -> list[int]:
        """apply: the deployment's replicas (each a process group: BentoML's workers)."""
        return self.replica_pids() if self.strategy == "apply" else super().process_roots()

    def processes_alone(self) -> tuple[int, ...]:
        """apply: the gateway, without the zygotes and the other deployments' replicas under it."""
        pid = self.gateway_pid() if self.strategy == "apply" else None
        return (pid,) if pid else ()

    def direct_url(self) -> str | None:
        """A ready replica's own URL, past the gateway (apply only), from the gateway's state file."""
        ready = self.conduit_home.replicas(self.deploy_name, "ready") if self.strategy == "apply" else []
        return f"http://127.0.0.1:{ready[0]['port']}/predict" if ready else None


class ConduitDirect(Contender):
    """The same deployment as `endpoint`, called on its replica's own port, past the gateway: the
    difference to `endpoint` is what the gateway costs (with one replica, both reach the same one)."""

    cold_start = False

    def __init__(self, endpoint: ConduitEndpoint) -> None:
        super().__init__(endpoint.model, endpoint.work)
        self.endpoint = endpoint
        self.auth = endpoint.auth
        self.name = f"{endpoint.name}-direct"  # type: ignore[misc]

    def start(self) -> float:
        url = self.endpoint.direct_url()
        if url is None:
            raise RuntimeError("no ready replica in the gateway's state.json: conduit was not applied to the local target")
        self.url = url
        return 0.0

    def stop(self) -> None:
        pass  # the endpoint's deployment is stopped by the endpoint

    def process_roots(self) -> list[int]:
        return self.endpoint.replica_pids()

    def results(self, response: dict) -> list:
        return response["result"]


def main(argv: list[str]) -> int:
    """`python -m bench.conduit_adapter apply FILE | delete NAME | stop-gateway`: the local
    target's Python API in this process's CONDUIT_HOME (the apply prints the endpoint last)."""
    from conduit.store import Store
    from conduit.targets import local

    action, *args = argv
    if action == "apply":
        from conduit.manifest.loader import load

        print(local.apply(load(Path(args[0])), api_key=API_KEY).endpoint, flush=True)
    elif action == "delete":
        local.delete(args[0])
    elif action == "stop-gateway":
        local.stop_gateway(Store())
    else:
        raise SystemExit(f"unknown action {action!r}: apply FILE, delete NAME or stop-gateway")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
