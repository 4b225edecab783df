"""conduit's endpoint as a contender: a thin adapter over whatever of conduit exists.

Strategies, best first (the run records which one it used):
- "apply":  `conduit apply conduit.yaml` into a temporary CONDUIT_HOME: the real user path. Cold
            start = apply to first prediction; `reapply()` times a second apply with nothing changed.
- "render": conduit.render -> the build context, served by `bentoml serve service:<Class>` with the
            environment conduit's local target gives it (conduit.serving.serve_env). No build step
            and no supervisor, so it is the same service, started more cheaply than apply.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.contenders import Contender, base_env
from bench.models import BenchModel
from bench.servers import free_port

API_KEY = "bench-key-0123456789abcdef"  # a throwaway key for a throwaway CONDUIT_HOME
ENDPOINT_PATTERN = re.compile(r"https?://127\.0\.0\.1:\d+/\S*")


def strategy() -> str | None:
    forced = os.environ.get("BENCH_CONDUIT_VIA")  # "apply" or "render": compare the two paths
    if forced:
        return forced
    if importlib.util.find_spec("conduit.cli.apply") is not None:
        return "apply"
    if importlib.util.find_spec("conduit.render") is not None:
        return "render"
    return None


class ConduitEndpoint(Contender):
    """conduit serving the model; `batching` is the manifest's batching block (None: off)."""

    def __init__(self, model: BenchModel, work: Path, batching: dict | None = None, cpu: int = 2,
                 extra_env: dict[str, str] | None = None, name: str | None = None) -> None:
        super().__init__(model, work)
        self.batching, self.cpu, self.extra_env, self._name = batching, cpu, extra_env or {}, name
        self.strategy = strategy()
        self.auth = API_KEY
        self.deploy_name = f"b-{model.key}-{self.name.replace('conduit', 'c')}".replace("+", "-")[:20].rstrip("-")
        self.folder = work / self.deploy_name
        self.home = work / "conduit-home"
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
            "min_replicas": 1,
        }
        if self.batching:
            document["batching"] = dict(self.batching)
        return document

    def start(self) -> float:
        if self.strategy is None:
            raise RuntimeError("conduit has neither `conduit apply` nor conduit.render yet")
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
        return {**base_env(self.work), "CONDUIT_HOME": str(self.home), "CONDUIT_API_KEY": API_KEY, **self.extra_env}

    def _manifest_path(self) -> Path:
        from conduit.manifest.model import Manifest

        manifest = Manifest.model_validate(self.manifest_document())
        path = self.folder / "conduit.yaml"
        try:
            from conduit.manifest.dump import to_yaml

            path.write_text(to_yaml(manifest))
        except ImportError:  # JSON is YAML: fine until the dumper lands
            path.write_text(manifest.model_dump_json(by_alias=True, exclude_none=True))
        return path

    def _conduit(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "conduit.cli.main", *args]
        return subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=600)

    def _apply(self) -> float:
        started = time.perf_counter()
        applied = self._conduit("apply", str(self._manifest_path()))
        if applied.returncode != 0:
            raise RuntimeError(f"conduit apply failed: {applied.stdout[-800:]}{applied.stderr[-800:]}")
        found = ENDPOINT_PATTERN.search(applied.stdout + applied.stderr)
        if found is None:
            raise RuntimeError(f"conduit apply printed no endpoint: {applied.stdout[-800:]}")
        self.url = found.group(0).rstrip(".,;)")
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
        if self.strategy == "apply" and self.url:
            self._conduit("delete", self.deploy_name)
        super().stop()

    # -- render + bentoml serve -----------------------------------------------------------------------

    def _render_and_serve(self) -> float:
        from conduit.manifest.model import Manifest
        from conduit.render import render
        from conduit.serving.auth import key_sha256
        from conduit.serving.process import serve_env

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

    def process_roots(self) -> list[int]:
        """apply: the serving revision's supervisor (bentoml serve and its workers) and the router."""
        if self.strategy != "apply":
            return super().process_roots()
        from conduit.store import Store

        store = Store(self.home)
        return [store.serving(self.deploy_name).pid, store.require(self.deploy_name).router_pid]

    def backend_url(self) -> str | None:
        """The serving revision's own URL behind the router (apply only): the local target's
        backend file names its port."""
        backend = self.home / "run" / f"{self.deploy_name}.backend"
        if self.strategy != "apply" or not backend.exists():
            return None
        return f"http://127.0.0.1:{int(backend.read_text().strip())}/predict"


class ConduitBackend(Contender):
    """The same deployment as `endpoint`, called on its serving revision's port, past the router:
    the difference to `endpoint` is what the router costs."""

    cold_start = False

    def __init__(self, endpoint: ConduitEndpoint) -> None:
        super().__init__(endpoint.model, endpoint.work)
        self.endpoint = endpoint
        self.auth = endpoint.auth
        self.name = f"{endpoint.name}-direct"  # type: ignore[misc]

    def start(self) -> float:
        url = self.endpoint.backend_url()
        if url is None:
            raise RuntimeError("no backend port: conduit was not deployed with `conduit apply`")
        self.url = url
        return 0.0

    def stop(self) -> None:
        pass  # the endpoint's deployment is stopped by the endpoint

    def process_roots(self) -> list[int]:
        return self.endpoint.process_roots()[:1]  # the revision, not the router

    def results(self, response: dict) -> list:
        return response["result"]
