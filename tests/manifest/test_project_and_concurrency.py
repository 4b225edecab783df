"""`project` (the endpoint's path locally, the namespace on Kubernetes) and `replica_concurrency`
(the soft in-flight target per replica): defaults, the hardware column, YAML and Python agree."""
from __future__ import annotations

from pathlib import Path

import pytest

from conduit import Conduit
from conduit.hardware import HARDWARE, Hardware
from conduit.manifest import build, load, load_with_warnings
from conduit.manifest.names import project_problem, suggest_project


def manifest_of(folder: Path, **fields):
    return build({"name": "iris", "flow": ("sklearn", "model.pkl"), **fields}, folder)


def test_left_out_the_project_is_default_and_the_target_follows_the_hardware(artifacts: Path):
    manifest, warnings = manifest_of(artifacts)
    assert (manifest.project, manifest.replica_concurrency, manifest.resolved_replica_concurrency) == ("default", None, 4)
    assert warnings == []
    on_a_gpu = build({"name": "mlp", "flow": ("torch", "model.pt")}, artifacts)[0]
    assert (on_a_gpu.resolved_hardware, on_a_gpu.resolved_replica_concurrency) == (Hardware.AMPERE_A5000, 1)


def test_the_hardware_table_has_the_default_target_of_every_row():
    assert {hardware: row.replica_concurrency for hardware, row in HARDWARE.items() if not row.is_gpu} == {Hardware.CPU: 4}
    assert {row.replica_concurrency for row in HARDWARE.values() if row.is_gpu} == {1}


def test_a_written_target_wins_and_batching_wants_a_whole_batch(artifacts: Path):
    assert manifest_of(artifacts, replica_concurrency=9, hardware="H100")[0].resolved_replica_concurrency == 9
    batching = {"max_batch_size": 16}
    assert manifest_of(artifacts, batching=batching)[0].resolved_replica_concurrency == 16
    assert manifest_of(artifacts, batching=batching, replica_concurrency=32)[0].resolved_replica_concurrency == 32


def test_a_target_below_the_batch_size_is_a_warning_on_its_line(artifacts: Path):
    (artifacts / "conduit.yaml").write_text(
        "name: iris\nflow: [sklearn, model.pkl]\nreplica_concurrency: 2\nbatching:\n  max_batch_size: 8\n"
    )
    _, warnings = load_with_warnings(artifacts / "conduit.yaml")
    assert [str(warning) for warning in warnings] == [(
        f"{artifacts}/conduit.yaml:3:22: warning: replica_concurrency: replica_concurrency 2 is less than "
        "batching.max_batch_size 8: replicas are added before a batch can fill (hint: raise replica_concurrency "
        "to 8 or lower max_batch_size to 2)"
    )]


def test_python_and_yaml_write_and_read_the_same_fields(artifacts: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(artifacts)
    conduit = Conduit(name="iris", flow=("sklearn", "model.pkl"), project="team-a", replica_concurrency=8)
    text = conduit.to_yaml()
    assert "name: iris\nproject: team-a\nflow:\n" in text and "max_replicas: 2\nreplica_concurrency: 8\n" in text
    saved = conduit.save(artifacts / "conduit.yaml")
    assert load(saved) == conduit.manifest
    assert Conduit.from_yaml(saved).to_yaml() == text


def test_the_default_project_is_written_and_no_target_is_invented(artifacts: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(artifacts)
    text = Conduit(name="iris", flow=("sklearn", "model.pkl")).to_yaml()
    assert "\nproject: default\n" in text and "replica_concurrency" not in text  # it follows the hardware


@pytest.mark.parametrize(
    ("project", "problem", "suggestion"),
    [
        ("team-a", None, "team-a"),
        ("2024-q1", None, "2024-q1"),  # a DNS-1123 label may start with a digit, unlike a name
        ("Team A", "project 'Team A' may hold only lowercase letters, digits and hyphens", "team-a"),
        ("-ops", "project '-ops' must start and end with a letter or digit", "ops"),
        ("", "project is empty", "default"),
    ],
)
def test_project_rules_and_suggestions(project: str, problem, suggestion: str):
    assert project_problem(project) == problem
    assert suggest_project(project) == suggestion
