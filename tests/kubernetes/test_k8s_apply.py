"""`conduit.targets.kubernetes.apply` with the real kubectl against a recorded-request double of the
API server (`apiserver_double.py`). Only the cluster is a double, because no cluster can run here:
the tests check what reaches the API server (server-side apply, field manager `conduit`, strict
field validation, the Secret before the workload, the key hash and never the key) and how conduit
reads readiness back. What a real KServe/Knative controller does with the objects is not tested.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from apiserver_double import RunningDouble
from conduit.errors import ConduitError
from conduit.targets.kubernetes.apply import Kubectl, apply_and_wait, readiness
from conduit.targets.kubernetes import apply
from k8s_helpers import make_manifest

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
IMAGE = "registry.example/models/iris:5c0ffee"


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with RunningDouble(tmp_path / "kubeconfig.json", namespace="models") as running:
        monkeypatch.setenv("KUBECONFIG", str(running.kubeconfig))
        monkeypatch.setenv("HOME", str(tmp_path))  # kubectl's cache goes here, not in the real home
        yield running.double


def test_serverless_apply_sends_the_secret_then_the_inferenceservice(cluster, monkeypatch) -> None:
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-never-sent")
    url = apply(make_manifest(hardware="A100", min_replicas=0, project="models"), image=IMAGE)
    assert url == "http://iris.models.example.com/predict"
    patches = cluster.applied()
    assert [r.path for r in patches] == [
        "/api/v1/namespaces/models/secrets/iris-conduit-auth",
        "/apis/serving.kserve.io/v1beta1/namespaces/models/inferenceservices/iris",
    ]
    for request in patches:
        assert request.content_type == "application/apply-patch+yaml"
        assert request.query == {"fieldManager": ["conduit"], "force": ["true"], "fieldValidation": ["Strict"]}
    assert patches[0].body["stringData"] == {"api-key-sha256": hashlib.sha256(b"sk-test-never-sent").hexdigest()}
    predictor = patches[1].body["spec"]["predictor"]
    assert predictor["minReplicas"] == 0 and predictor["containers"][0]["image"] == IMAGE
    assert "sk-test-never-sent" not in json.dumps([r.body for r in cluster.requests])


def test_raw_apply_waits_for_the_rollout_and_returns_the_service_address(cluster, monkeypatch) -> None:
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-raw-Q7vK2mZp")
    url = apply(make_manifest(min_replicas=1), namespace="team-a", flavor="raw", image=IMAGE)
    assert url == "http://iris.team-a.svc.cluster.local/predict"
    kinds = [r.body["kind"] for r in cluster.applied()]
    assert kinds[0] == "Secret" and sorted(kinds[1:]) == ["Deployment", "HorizontalPodAutoscaler", "Service"]
    assert all("/namespaces/team-a/" in r.path for r in cluster.applied())
    assert {r.body["metadata"]["namespace"] for r in cluster.applied()} == {"team-a"}


def test_the_project_is_the_namespace_unless_one_is_given(cluster, monkeypatch) -> None:
    """Not the kubeconfig's namespace (`models` here): the manifest says where it goes."""
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-project-T5mW2pQx")
    assert apply(make_manifest(), image=IMAGE) == "http://iris.default.example.com/predict"
    assert apply(make_manifest(project="team-b"), image=IMAGE) == "http://iris.team-b.example.com/predict"
    apply(make_manifest(name="other", project="team-b"), namespace="team-c", image=IMAGE)
    assert [(r.path.split("/")[-3], r.body["metadata"]["namespace"]) for r in cluster.applied()] == [
        ("default", "default"), ("default", "default"),
        ("team-b", "team-b"), ("team-b", "team-b"),
        ("team-c", "team-c"), ("team-c", "team-c"),
    ]


def test_without_a_key_or_an_existing_secret_nothing_is_applied(cluster, monkeypatch) -> None:
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    with pytest.raises(ConduitError, match="kubectl create secret generic iris-conduit-auth"):
        apply(make_manifest(), image=IMAGE)
    assert cluster.applied() == []


def test_an_existing_secret_is_used_when_no_key_is_given(cluster, monkeypatch) -> None:
    cluster.objects[("secrets", "models", "iris-conduit-auth")] = {"kind": "Secret", "metadata": {"name": "iris-conduit-auth"}}
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    apply(make_manifest(project="models"), image=IMAGE)
    assert [r.body["kind"] for r in cluster.applied()] == ["InferenceService"]


def test_a_service_that_never_gets_ready_fails_with_the_reason(cluster, monkeypatch) -> None:
    cluster.ready = False
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-not-ready")
    with pytest.raises(ConduitError, match="not ready after 0s: Revision has not become ready"):
        apply(make_manifest(), image=IMAGE, timeout_s=0)


def test_an_unknown_context_is_a_clear_error(cluster, monkeypatch) -> None:
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-context-J3hB6yDq")
    with pytest.raises(ConduitError, match="kubectl apply failed:.*no-such-context"):
        apply(make_manifest(), context="no-such-context", image=IMAGE)


def test_no_kubectl_is_a_clear_error() -> None:
    kubectl = Kubectl(executable="kubectl-that-is-not-installed")
    with pytest.raises(ConduitError, match="kubectl not found.*conduit render --target kubernetes"):
        apply_and_wait(kubectl, "iris", "serverless", {"iris-inferenceservice.yaml": ""}, secret_rendered=True)


@pytest.mark.parametrize(
    ("status", "generation", "ready"),
    [
        ({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, 1, True),
        ({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, 2, False),
        ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}, 2, False),
        ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}, 2, False),
    ],
)
def test_rollout_readiness_follows_kubectl_rollout_status(status: dict, generation: int, ready: bool) -> None:
    deployment = {"metadata": {"generation": generation}, "spec": {"replicas": 2}, "status": status}
    assert readiness("deployment", deployment)[0] is ready


def test_delete_removes_what_conduit_applied_and_keeps_a_hand_made_secret(cluster, monkeypatch) -> None:
    from conduit.targets.kubernetes import delete

    hand_made = {"kind": "Secret", "metadata": {"name": "iris-conduit-auth"}}
    cluster.objects[("secrets", "models", "iris-conduit-auth")] = hand_made
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    apply(make_manifest(min_replicas=1, project="models"), flavor="raw", image=IMAGE)
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-other-W4nR8tLx")
    apply(make_manifest(name="other", project="models"), image=IMAGE)
    delete("iris", namespace="models")
    assert sorted(cluster.objects) == [
        ("inferenceservices", "models", "other"),
        ("secrets", "models", "iris-conduit-auth"),
        ("secrets", "models", "other-conduit-auth"),
    ]
    deleted = [r.path for r in cluster.requests if r.method == "DELETE"]
    assert sorted(deleted) == [
        "/api/v1/namespaces/models/services/iris",
        "/apis/apps/v1/namespaces/models/deployments/iris",
        "/apis/autoscaling/v2/namespaces/models/horizontalpodautoscalers/iris",
    ]


def test_with_a_registry_but_no_image_builder_nothing_is_applied(cluster, tmp_path, monkeypatch) -> None:
    """CONDUIT_REGISTRY makes apply build and containerize first; with no builder on PATH that
    stops with a clear error before any build, and before anything reaches the cluster."""
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.delenv("CONDUIT_CONTAINER_BUILDER", raising=False)
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONDUIT_REGISTRY", "registry.example/models")
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-registry")
    with pytest.raises(ConduitError, match="no container builder works here"):
        apply(make_manifest(flow="sklearn_single").with_base_dir(tmp_path))
    assert cluster.requests == []
    assert not (tmp_path / "home").exists()  # nothing was built


def test_the_cli_applies_and_deletes_through_the_kubernetes_target(cluster, tmp_path, monkeypatch, capsys) -> None:
    """`conduit apply --target kubernetes` puts the deployment in its project's namespace and
    `conduit delete --target kubernetes --namespace` removes it there."""
    from conduit.cli.main import main

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"\x80\x04K\x01.")  # a pickle of 1: validation reads opcodes only
    (folder / "conduit.yaml").write_text("name: iris\nproject: models\nflow: [sklearn, model.pkl]\nmin_replicas: 1\n")
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-test-cli-R2dV9kLs")
    assert main(["apply", str(folder / "conduit.yaml"), "--target", "kubernetes", "--image", IMAGE]) == 0
    assert "🌍 Endpoint: http://iris.models.example.com/predict" in capsys.readouterr().out
    assert sorted(cluster.objects) == [("inferenceservices", "models", "iris"), ("secrets", "models", "iris-conduit-auth")]
    assert main(["delete", "iris", "--target", "kubernetes", "--namespace", "models"]) == 0
    assert "🗑️  Deleted iris from namespace models" in capsys.readouterr().out
    assert cluster.objects == {}
