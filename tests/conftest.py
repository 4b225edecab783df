"""Shared test set-up: offline Hugging Face, GPU tests skip cleanly without CUDA."""
from __future__ import annotations

import os

import pytest

# No code downloads models: a missing local model must fail at once, not retry the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (none here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True, scope="module")
def _gateway_port_per_module():
    """Each test module's gateways get a port of their own (CONDUIT_PORT): one a module left
    running cannot make the next module's apply fail with "port taken"."""
    import socket

    saved = os.environ.get("CONDUIT_PORT")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        os.environ["CONDUIT_PORT"] = str(probe.getsockname()[1])
    yield
    if saved is None:
        os.environ.pop("CONDUIT_PORT", None)
    else:
        os.environ["CONDUIT_PORT"] = saved


@pytest.fixture(autouse=True, scope="session")
def _one_folder_of_environments(tmp_path_factory):
    """Every test's CONDUIT_HOME shares one folder of Python environments (CONDUIT_ENVS): the suite
    deploys many Bentos with the same pins, which then make one environment, not one per home."""
    saved = os.environ.get("CONDUIT_ENVS")
    os.environ["CONDUIT_ENVS"] = saved or str(tmp_path_factory.mktemp("environments"))
    yield
    if saved is None:
        os.environ.pop("CONDUIT_ENVS", None)
