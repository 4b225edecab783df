"""Rendered Kubernetes manifests: every hardware row and flavour validates against the real schemas
(Kubernetes core via kubernetes-validate, strict; KServe via the CRD's openAPIV3Schema, closed to
unknown fields as the API server's strict field validation is), and carries the manifest's values."""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pytest
from conduit.errors import UsageError
from conduit.hardware import HARDWARE, Hardware
from conduit.targets.kubernetes import render_manifests, render_to
from k8s_helpers import (
    HARDWARE_ROWS,
    bad_labels,
    kserve_errors,
    kubernetes_errors,
    make_manifest,
    parse,
)
from example_mirror import EXAMPLES, mirror
from kserve_schema import SHARED_CRD, SOURCE_RECORD, file_sha256

KEY_HASH = hashlib.sha256(b"test-key").hexdigest()


def _render(manifest, flavor="serverless", **kwargs) -> dict[str, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated rows are tested on their own
        return {name: parse(text) for name, text in render_manifests(manifest, flavor, **kwargs).items()}


def _only(docs: dict[str, dict], kind: str) -> dict:
    (doc,) = [d for d in docs.values() if d["kind"] == kind]
    return doc


def _assert_valid(docs: dict[str, dict]) -> None:
    for name, doc in docs.items():
        errors = kserve_errors(doc) if doc["kind"] == "InferenceService" else kubernetes_errors(doc)
        assert errors == [], f"{name}: {errors}"
        assert bad_labels(doc) == [], name


@pytest.mark.parametrize("hardware", HARDWARE_ROWS, ids=str)
@pytest.mark.parametrize("flow", ["sklearn", "torch", "huggingface"])
def test_every_hardware_renders_valid_serverless_and_raw(hardware: Hardware, flow: str) -> None:
    manifest = make_manifest(flow=flow, hardware=hardware.value, min_replicas=1)
    _assert_valid(_render(manifest, image="registry.example/iris:0a1b2c", api_key_sha256=KEY_HASH))
    _assert_valid(_render(manifest, "raw", bento_tag="iris:0a1b2c", api_key_sha256=KEY_HASH))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_example_on_every_hardware_validates(example: Path, tmp_path: Path) -> None:
    from conduit.manifest import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        manifest = load(mirror(example, tmp_path))  # stand-in artifacts: a fresh clone has none
    for hardware in HARDWARE_ROWS:
        memory = min(manifest.memory, HARDWARE[hardware].memory_max_gb)
        variant = manifest.model_copy(update={"hardware": hardware, "memory": memory})
        _assert_valid(_render(variant))
        _assert_valid(_render(variant.model_copy(update={"min_replicas": max(1, manifest.min_replicas)}), "raw"))


def test_a100_requests_one_gpu_on_an_a100_node() -> None:
    docs = _render(make_manifest(flow="torch", hardware="A100"))
    predictor = _only(docs, "InferenceService")["spec"]["predictor"]
    assert predictor["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor["tolerations"]


def test_cpu_requests_no_gpu_and_no_gpu_node() -> None:
    for flavor in ("serverless", "raw"):
        docs = render_manifests(make_manifest(hardware="CPU", min_replicas=1), flavor)
        assert not any("nvidia.com" in text for text in docs.values()), flavor


def test_deprecated_gpu_renders_a_t4_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match=r"GPU is deprecated.*T4.*TURING_5000"):
        docs = {name: parse(text) for name, text in render_manifests(make_manifest(hardware="GPU")).items()}
    predictor = _only(docs, "InferenceService")["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "Tesla-T4"}


def test_default_hardware_of_a_torch_flow_is_a_gpu() -> None:
    predictor = _only(_render(make_manifest(flow="torch")), "InferenceService")["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": HARDWARE[Hardware.AMPERE_A5000].node_product_label}


def test_scaling_comes_from_the_manifest() -> None:
    manifest = make_manifest(min_replicas=0, max_replicas=7, cooldown=90, replica_concurrency=12)
    docs = _render(manifest, api_key_sha256=KEY_HASH)
    _assert_valid(docs)
    isvc = _only(docs, "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 7)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 12)
    assert isvc["metadata"]["annotations"]["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "90s"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"


@pytest.mark.parametrize(("hardware", "target"), [("CPU", 4), ("A100", 1), ("H200", 1)])
def test_without_replica_concurrency_the_hardware_sets_the_target(hardware: str, target: int) -> None:
    predictor = _only(_render(make_manifest(flow="torch", hardware=hardware)), "InferenceService")["spec"]["predictor"]
    assert predictor["scaleTarget"] == target == HARDWARE[Hardware(hardware)].replica_concurrency


def test_the_concurrency_target_is_soft_no_container_concurrency() -> None:
    """Knative's containerConcurrency is a hard cap per pod; the local gateway's target is soft."""
    predictor = _only(_render(make_manifest(replica_concurrency=3)), "InferenceService")["spec"]["predictor"]
    assert "containerConcurrency" not in predictor and predictor["scaleTarget"] == 3


@pytest.mark.parametrize("flavor", ["serverless", "raw"])
def test_every_object_is_in_the_projects_namespace_unless_one_is_given(flavor: str) -> None:
    manifest = make_manifest(project="team-a", min_replicas=1)
    for namespace, expected in ((None, "team-a"), ("ops", "ops")):
        docs = _render(manifest, flavor, api_key_sha256=KEY_HASH, namespace=namespace)
        _assert_valid(docs)
        assert {doc["metadata"]["namespace"] for doc in docs.values()} == {expected}
        assert {doc["metadata"]["labels"]["conduit.dev/project"] for doc in docs.values()} == {"team-a"}


def test_batching_sets_the_concurrency_target_to_one_batch() -> None:
    manifest = make_manifest(batching={"max_batch_size": 16, "max_latency_ms": 5})
    assert _only(_render(manifest), "InferenceService")["spec"]["predictor"]["scaleTarget"] == 16
    manifest = make_manifest(batching={"max_batch_size": 4096, "max_latency_ms": 5})
    assert _only(_render(manifest), "InferenceService")["spec"]["predictor"]["scaleTarget"] == 1000  # the field's ceiling


def test_cpu_and_memory_are_requests_and_limits() -> None:
    container = _only(_render(make_manifest(cpu=4, memory=8.5)), "InferenceService")["spec"]["predictor"]["containers"][0]
    expected = {"cpu": "4", "memory": "8704Mi"}
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 3000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": 3000}


def test_raw_flavour_maps_scaling_onto_the_hpa() -> None:
    docs = _render(make_manifest(min_replicas=2, max_replicas=5, cooldown=7200), "raw")
    hpa = _only(docs, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 3600  # the API's ceiling
    assert "replicas" not in _only(docs, "Deployment")["spec"]  # the HPA owns the count
    assert _only(docs, "Service")["spec"]["ports"][0]["targetPort"] == 3000


def test_raw_flavour_refuses_scale_to_zero_and_names_serverless() -> None:
    with pytest.raises(UsageError, match="serverless"):
        render_manifests(make_manifest(min_replicas=0), "raw")


def test_unknown_flavour_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="serverless, raw"):
        render_manifests(make_manifest(), "knative")


def test_labels_carry_name_revision_and_bento_tag() -> None:
    isvc = _only(_render(make_manifest(), bento_tag="iris:7f3a9c0d2e1b"), "InferenceService")
    assert isvc["metadata"]["labels"]["app.kubernetes.io/name"] == "iris"
    assert isvc["metadata"]["labels"]["conduit.dev/revision"] == "7f3a9c0d2e1b"
    assert isvc["metadata"]["annotations"]["conduit.dev/bento-tag"] == "iris:7f3a9c0d2e1b"
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == "iris:7f3a9c0d2e1b"


def test_the_secret_holds_the_hash_and_the_container_reads_it() -> None:
    docs = _render(make_manifest(), api_key_sha256=KEY_HASH)
    assert _only(docs, "Secret")["stringData"] == {"api-key-sha256": KEY_HASH}
    env = _only(docs, "InferenceService")["spec"]["predictor"]["containers"][0]["env"]
    assert env == [
        {"name": "CONDUIT_API_KEY_SHA256", "valueFrom": {"secretKeyRef": {"name": "iris-conduit-auth", "key": "api-key-sha256"}}}
    ]


def test_a_plain_key_passed_as_the_hash_is_refused() -> None:
    with pytest.raises(UsageError, match="never the key itself"):
        render_manifests(make_manifest(), api_key_sha256="sk-live-this-is-a-key")


def test_render_to_writes_the_hash_never_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUIT_API_KEY", "sk-live-do-not-leak")
    written = render_to(make_manifest(), tmp_path / "deploy", image="iris:1")
    assert sorted(p.name for p in written) == ["iris-inferenceservice.yaml", "iris-secret.yaml"]
    texts = [p.read_text() for p in written]
    assert not any("sk-live-do-not-leak" in text for text in texts)
    assert hashlib.sha256(b"sk-live-do-not-leak").hexdigest() in texts[1]


def test_without_a_key_the_secret_is_left_out_and_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    (written,) = render_to(make_manifest(), tmp_path, image="iris:1")
    assert "kubectl create secret generic iris-conduit-auth" in written.read_text()


def test_the_strict_schema_check_catches_a_misspelt_field() -> None:
    isvc = _only(_render(make_manifest()), "InferenceService")
    isvc["spec"]["predictor"]["minReplica"] = isvc["spec"]["predictor"].pop("minReplicas")
    assert any("minReplica" in error for error in kserve_errors(isvc))


@pytest.mark.skipif(not SHARED_CRD.exists(), reason="the shared folder is not beside this checkout")
def test_the_committed_kserve_schema_came_from_the_shared_crd() -> None:
    """The copy was extracted from this exact CRD file; if the shared CRD moves on, regenerate it
    with `python tests/kubernetes/kserve_schema.py`."""
    assert json.loads(SOURCE_RECORD.read_text())["crd_sha256"] == file_sha256(SHARED_CRD)


def test_without_an_image_the_bento_tag_is_the_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default image is `<name>:<version>`, the tag `conduit build` gives the Bento (a real
    render of a real tiny model, so the version is the content hash)."""
    import pickle

    from conduit.render import render

    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(LogisticRegression(max_iter=200).fit(features, labels)))
    manifest = make_manifest(flow="sklearn_single").with_base_dir(tmp_path)
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    (written,) = render_to(manifest, tmp_path / "deploy")
    version = render(manifest, tmp_path / "bentos").version
    container = parse(written.read_text())["spec"]["predictor"]["containers"][0]
    assert container["image"] == f"iris:{version}"


SINK = "http://message-dumper.default.svc.cluster.local"


def test_prediction_log_with_a_url_renders_kserves_logger_which_validates() -> None:
    manifest = make_manifest(min_replicas=1, prediction_log={"url": SINK})
    docs = _render(manifest, api_key_sha256=KEY_HASH)
    _assert_valid(docs)
    assert _only(docs, "InferenceService")["spec"]["predictor"]["logger"] == {"mode": "all", "url": SINK}


@pytest.mark.parametrize(
    "prediction_log",
    [None, {"sample": 0.5}, {"url": SINK, "payloads": False}, {"url": SINK, "enabled": False}],
    ids=["left-out", "no-url", "payloads-off", "off"],
)
def test_no_logger_without_a_url_with_payloads_off_or_the_log_off(prediction_log) -> None:
    docs = _render(make_manifest(prediction_log=prediction_log))
    assert "logger" not in _only(docs, "InferenceService")["spec"]["predictor"]


def test_the_cli_renders_into_the_namespace_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from conduit.cli.main import main

    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")  # validation reads a pickle's opcodes only
    (tmp_path / "conduit.yaml").write_text("name: iris\nproject: team-a\nflow: [sklearn, model.pkl]\nreplica_concurrency: 5\n")
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    argv = ["render", str(tmp_path / "conduit.yaml"), "--target", "kubernetes", "--image", "iris:1", "--out", str(tmp_path / "k8s")]
    assert main([*argv, "--namespace", "ops"]) == 0
    written = tmp_path / "k8s" / "iris-inferenceservice.yaml"
    assert capsys.readouterr().out == f"✅ Wrote {written}\n"
    isvc = parse(written.read_text())
    assert (isvc["metadata"]["namespace"], isvc["spec"]["predictor"]["scaleTarget"]) == ("ops", 5)
    assert main(argv) == 0
    assert parse(written.read_text())["metadata"]["namespace"] == "team-a"
