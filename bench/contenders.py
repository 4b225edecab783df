"""The servers under test. Each contender serves one BenchModel on 127.0.0.1 and says how to call it.

- BentoMLPeer:  bench/peers/bentoml_service.py served bare with `bentoml serve` (no build).
- MLServerPeer: MLServer 1.7.1's scikit-learn runtime from bench/.venv-mlserver, V2 protocol.
- conduit:      see bench/conduit_adapter.py (`conduit apply`, or render + `bentoml serve`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import orjson

from bench.models import BenchModel
from bench.servers import ServerProcess, free_port, post_json

BENCH_DIR = Path(__file__).resolve().parent
MLSERVER_BIN = BENCH_DIR / ".venv-mlserver" / "bin" / "mlserver"


class Contender:
    """Started once per run; `start` returns its seconds from launch to ready."""

    name = "contender"
    scenarios: tuple[str, ...] | None = None  # None: every scenario of the run

    def __init__(self, model: BenchModel, work: Path) -> None:
        self.model, self.work = model, work
        self.url = ""
        self.auth: str | None = None
        self.server: ServerProcess | None = None

    @property
    def label(self) -> str:
        return self.name

    @property
    def body(self) -> bytes:
        return self.model.body

    def start(self) -> float:
        raise NotImplementedError

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def results(self, response: dict) -> list:
        """The model results in this contender's response document."""
        return response

    def process_roots(self) -> list[int]:
        """The pids whose process trees serve this contender (their CPU is the server's)."""
        return [self.server.process.pid] if self.server is not None and self.server.process is not None else []

    def processes_alone(self) -> tuple[int, ...]:
        """Processes that serve it too, counted without their children (see tree_cpu_seconds)."""
        return ()

    def predict_once(self) -> list:
        response = post_json(self.url, self.body, self.auth)
        if response.status_code != 200:
            raise RuntimeError(f"{self.label}: HTTP {response.status_code}: {response.text[:300]}")
        return self.results(response.json())

    def _launch(self, command: list[str], env: dict[str, str], ready_url: str, cwd: Path | None = None) -> float:
        started = time.perf_counter()
        self.server = ServerProcess(command, env, self.work / f"{self.model.key}-{self.label}.log", cwd)
        self.server.start()
        self.server.wait_ready(ready_url)
        return time.perf_counter() - started


def base_env(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BENTOML_HOME": str(work / "bentoml-home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


class BentoMLPeer(Contender):
    """`service` is module:Class in `folder`: the peer, or a prototype in bench/prototypes."""

    def __init__(self, model: BenchModel, work: Path, workers: int = 1, name: str = "bentoml",
                 service: str = "bentoml_service:Peer", folder: Path = BENCH_DIR / "peers",
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__(model, work)
        self.workers, self.service, self.folder, self.extra_env = workers, service, folder, extra_env or {}
        self.name = name  # type: ignore[misc]

    @property
    def body(self) -> bytes:
        return orjson.dumps({"data": [self.model.row]})

    def start(self) -> float:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/predict"
        command = [sys.executable, "-m", "bentoml", "serve", self.service, "--host", "127.0.0.1",
                   "--port", str(port), "--working-dir", str(self.folder)]
        env = {**base_env(self.work), "PEER_MODEL_PATH": str(self.model.artifact),
               "PEER_WORKERS": str(self.workers), "PROTO_WORKERS": str(self.workers), **self.extra_env}
        return self._launch(command, env, f"http://127.0.0.1:{port}/readyz")


class MLServerPeer(Contender):
    def __init__(self, model: BenchModel, work: Path, parallel_workers: int) -> None:
        super().__init__(model, work)
        self.parallel_workers = parallel_workers

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"mlserver-pw{self.parallel_workers}"

    @staticmethod
    def available() -> bool:
        return MLSERVER_BIN.exists()

    @property
    def body(self) -> bytes:
        rows = [self.model.row]
        tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}
        return orjson.dumps({"inputs": [tensor], "outputs": [{"name": "predict_proba"}]})

    def results(self, response: dict) -> list:
        output = response["outputs"][0]
        width = output["shape"][-1]
        flat = output["data"]
        return [flat[i : i + width] for i in range(0, len(flat), width)]

    def start(self) -> float:
        folder = self.work / self.name
        model_folder = folder / self.model.key
        model_folder.mkdir(parents=True, exist_ok=True)
        http_port = free_port()
        settings = {"host": "127.0.0.1", "http_port": http_port, "grpc_port": free_port(),
                    "metrics_port": free_port(), "parallel_workers": self.parallel_workers}
        (folder / "settings.json").write_text(json.dumps(settings))
        model_settings = {"name": self.model.key, "implementation": "mlserver_sklearn.SKLearnModel",
                          "parameters": {"uri": str(self.model.artifact)}}
        (model_folder / "model-settings.json").write_text(json.dumps(model_settings))
        self.url = f"http://127.0.0.1:{http_port}/v2/models/{self.model.key}/infer"
        env = {k: v for k, v in base_env(self.work).items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PATH"] = f"{MLSERVER_BIN.parent}:{env.get('PATH', '')}"
        ready = f"http://127.0.0.1:{http_port}/v2/models/{self.model.key}/ready"
        return self._launch([str(MLSERVER_BIN), "start", str(folder)], env, ready, cwd=folder)
