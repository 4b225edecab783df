"""The hardware table: the one place that knows what each `hardware` value means.

Validation (memory range, deprecation), BentoML `resources`, the Kubernetes GPU request and node
selector, the CUDA base image and size guidance are all read from `HARDWARE` below. A new GPU is
one row.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional


class Hardware(str, enum.Enum):
    """Spelled as in the Cerebrium seed document (`hardware.CPU ... hardware.A100`)."""

    CPU = "CPU"
    GPU = "GPU"  # deprecated: a T4
    A10 = "A10"  # deprecated
    TURING_4000 = "TURING_4000"
    TURING_5000 = "TURING_5000"
    AMPERE_A4000 = "AMPERE_A4000"
    AMPERE_A5000 = "AMPERE_A5000"
    AMPERE_A6000 = "AMPERE_A6000"
    A100 = "A100"
    AMPERE_A100 = "A100"  # noqa: PIE796 - alias: the same member as A100
    L4 = "L4"
    L40S = "L40S"
    H100 = "H100"
    H200 = "H200"

    def __str__(self) -> str:  # so f-strings and YAML show "A100", not "Hardware.A100"
        return self.value


@dataclass(frozen=True)
class HardwareSpec:
    gpu: Optional[str]  # product name shown to people; None for CPU
    vram_gb: int  # 0 for CPU
    memory_max_gb: float  # upper bound of `memory` on this hardware (lower bound is 2.0 everywhere)
    max_params_fp16_b: Optional[float]  # guidance: largest model (billions of parameters, FP16)
    node_product_label: Optional[str]  # value of the `nvidia.com/gpu.product` node label
    bentoml_gpu_type: Optional[str]  # BentoML `resources.gpu_type`
    replica_concurrency: int  # in-flight requests per replica before scaling out, unless the manifest says
    deprecated_use: Optional[Hardware] = None  # set when deprecated: what to use instead

    @property
    def is_gpu(self) -> bool:
        return self.gpu is not None


MEMORY_MIN_GB = 2.0
# Read by the math libraries (OpenMP, MKL, OpenBLAS) once, when they load.
MATH_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The default `replica_concurrency` (a soft target: the gateway or Knative adds a replica when the
# in-flight requests per replica pass it). A CPU replica runs `cpu` workers (2 by default), and 4
# keeps each worker busy with one request while about one more waits: a short queue, latency near
# twice the model time, before another replica is paid for. A GPU replica runs one worker that
# makes one model call at a time, so a second request in flight waits a whole call: scale out at
# once (batching changes this: see `Manifest.resolved_replica_concurrency`).
CPU_REPLICA_CONCURRENCY = 4
GPU_REPLICA_CONCURRENCY = 1
CUDA_VERSION = "12.8.1"  # CUDA base image version for every GPU row (bentofile `docker.cuda_version`; one BentoML 1.4 supports)

HARDWARE: dict[Hardware, HardwareSpec] = {
    Hardware.CPU: HardwareSpec(None, 0, 256.0, None, None, None, CPU_REPLICA_CONCURRENCY),
    Hardware.GPU: HardwareSpec("T4", 16, 64.0, 7, "Tesla-T4", "nvidia-tesla-t4", GPU_REPLICA_CONCURRENCY, Hardware.TURING_5000),
    Hardware.A10: HardwareSpec("A10", 24, 128.0, 10, "NVIDIA-A10", "nvidia-a10g", GPU_REPLICA_CONCURRENCY, Hardware.AMPERE_A5000),
    Hardware.TURING_4000: HardwareSpec("RTX 4000", 8, 64.0, 3, "Quadro-RTX-4000", "nvidia-quadro-rtx-4000", GPU_REPLICA_CONCURRENCY),
    Hardware.TURING_5000: HardwareSpec("RTX 5000", 16, 64.0, 7, "Quadro-RTX-5000", "nvidia-quadro-rtx-5000", GPU_REPLICA_CONCURRENCY),
    Hardware.AMPERE_A4000: HardwareSpec("RTX A4000", 16, 64.0, 7, "NVIDIA-RTX-A4000", "nvidia-rtx-a4000", GPU_REPLICA_CONCURRENCY),
    Hardware.AMPERE_A5000: HardwareSpec("RTX A5000", 24, 128.0, 10, "NVIDIA-RTX-A5000", "nvidia-rtx-a5000", GPU_REPLICA_CONCURRENCY),
    Hardware.AMPERE_A6000: HardwareSpec("RTX A6000", 48, 256.0, 21, "NVIDIA-RTX-A6000", "nvidia-rtx-a6000", GPU_REPLICA_CONCURRENCY),
    Hardware.A100: HardwareSpec("A100 40GB", 40, 256.0, 18, "NVIDIA-A100-SXM4-40GB", "nvidia-tesla-a100", GPU_REPLICA_CONCURRENCY),
    Hardware.L4: HardwareSpec("L4", 24, 128.0, 10, "NVIDIA-L4", "nvidia-l4", GPU_REPLICA_CONCURRENCY),
    Hardware.L40S: HardwareSpec("L40S", 48, 256.0, 21, "NVIDIA-L40S", "nvidia-l40s", GPU_REPLICA_CONCURRENCY),
    Hardware.H100: HardwareSpec("H100 80GB", 80, 256.0, 38, "NVIDIA-H100-80GB-HBM3", "nvidia-h100-80gb", GPU_REPLICA_CONCURRENCY),
    Hardware.H200: HardwareSpec("H200 141GB", 141, 256.0, 68, "NVIDIA-H200", "nvidia-h200-141gb", GPU_REPLICA_CONCURRENCY),
}


def spec(name: Hardware | str) -> HardwareSpec:
    return HARDWARE[Hardware(name)]


def worker_layout(hardware: Hardware | str, cpu: int) -> tuple[int, int]:
    """(workers, math threads per worker) for a service on `hardware` asking for `cpu` cores:
    one worker per core; a GPU is shared by one worker, which would otherwise load the model N
    times, and that worker's math libraries get all the cores."""
    workers = 1 if spec(hardware).is_gpu else cpu
    return workers, max(1, cpu // workers)


def math_thread_env(hardware: Hardware | str, cpu: int) -> dict[str, str]:
    """What each worker's math libraries are told: its share of the cores, so that several
    workers each running one thread per core do not fight over them."""
    _workers, threads = worker_layout(hardware, cpu)
    return {variable: str(threads) for variable in MATH_THREAD_VARIABLES}
