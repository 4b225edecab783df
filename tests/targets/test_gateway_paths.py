"""The gateway's own answers on a deployment's paths: predict takes POST (a 405 in the contract's
shape otherwise), /docs reaches BentoML's Swagger page, `conduit logs NAME --gateway` shows what the
gateway did for NAME, and a deleted deployment's logs move aside so a new one of the name starts
its own."""
from __future__ import annotations

import httpx
import pytest

from conduit.cli.main import main
from conduit.manifest.loader import load
from conduit.store import Store
from conduit.targets import local

from conftest import TEST_KEY, constant_project

pytest.importorskip("sklearn")
NAME = "paths"


@pytest.fixture(scope="module")
def served(conduit_home, tmp_path_factory):
    deployment = local.apply(load(constant_project(tmp_path_factory.mktemp("paths"), NAME, 7)), progress=lambda _: None)
    yield deployment
    if Store().deployment(NAME) is not None:
        local.delete(NAME, progress=lambda _: None)


def test_predict_takes_post_and_says_so_in_the_contracts_shape(served):
    assert httpx.post(served.endpoint, json=[[1, 2]], headers={"Authorization": TEST_KEY}).json()["result"] == [7]
    answer = httpx.get(served.endpoint, headers={"Authorization": TEST_KEY})
    assert answer.status_code == 405
    assert answer.json() == {"error": {"type": "method_not_allowed", "message": "predict takes POST, not GET"}, "run_id": None}


def test_docs_reach_the_swagger_page(served):
    docs = served.endpoint.removesuffix("/predict") + "/docs"
    answer = httpx.get(docs, headers={"Authorization": TEST_KEY})
    assert answer.status_code == 200 and "swagger" in answer.text.lower()


def test_logs_gateway_shows_what_the_gateway_did_for_the_deployment(served, capsys):
    assert main(["logs", NAME, "--gateway"]) == 0
    out = capsys.readouterr().out
    assert f"[conduit gateway] {NAME} revision 1: serving" in out.splitlines()
    assert all(line.startswith(f"[conduit gateway] {NAME} ") for line in out.splitlines())


def test_a_deleted_deployments_logs_move_aside(served):
    log = local.log_path(NAME)
    assert log.exists()
    local.delete(NAME, progress=lambda _: None)
    assert not log.exists()
    (kept,) = (Store().home / "logs" / "deleted").glob(f"{NAME}-*/{log.name}")
    assert kept.read_text()
