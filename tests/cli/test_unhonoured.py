"""Nothing is silently ignored: `conduit validate` warns, on stderr and one a line, about every
field the target does not honour (conduit.targets.honoured), and still exits 0."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from conduit.cli.main import main
from conduit.targets import honoured

OTHER_PYTHON = next(version for version in ("3.9", "3.10", "3.11") if version != honoured.serving_python())
EVERY_FIELD_SET = (
    "name: iris\nflow: [sklearn, model.pkl]\nmemory: 4.0\ncooldown: 30\nmin_replicas: 0\nmax_replicas: 3\n"
    f"requirements_file: requirements.txt\npython_version: \"{OTHER_PYTHON}\"\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([1.0, 2.0]))  # validate reads no model, only its file
    (tmp_path / "requirements.txt").write_text("numpy\n")
    return tmp_path


def validate(folder: Path, text: str, capsys, *options: str) -> tuple[int, str, list[str]]:
    (folder / "conduit.yaml").write_text(text)
    code = main(["validate", *options, str(folder / "conduit.yaml")])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_every_target_has_a_row_for_every_field():
    assert {target: set(rows) for target, rows in honoured.TARGETS.items()} == {
        "local": set(honoured.FIELDS),
        "kubernetes": set(honoured.FIELDS),
    }


def test_each_field_the_local_target_ignores_is_a_warning_naming_it(folder: Path, capsys):
    code, out, err = validate(folder, EVERY_FIELD_SET, capsys)
    file = f"{folder}/conduit.yaml"
    python = honoured.serving_python()
    assert (code, out) == (0, f"{file}: valid (iris)\n")
    assert err == [
        f"{file}:3:9: warning: memory: memory 4 GB is not enforced by the local target: a replica may use more",
        f"{file}:4:11: warning: cooldown: cooldown 30s is not honoured by the local target: its replica is never scaled down",
        f"{file}:5:15: warning: min_replicas: min_replicas 0 is not honoured by the local target: one replica stays warm until deleted",
        f"{file}:6:15: warning: max_replicas: max_replicas 3 is not honoured by the local target: one replica serves all load",
        (
            f"{file}:7:20: warning: requirements_file: requirements_file requirements.txt is not installed by the local "
            "target: the flow runs with conduit's own packages (hint: install them into conduit's environment)"
        ),
        (
            f"{file}:8:17: warning: python_version: python_version {OTHER_PYTHON} is not honoured by the local target: "
            f"the flow runs on conduit's own Python {python}"
        ),
    ]


def test_defaults_the_local_target_ignores_say_they_are_defaults(folder: Path, capsys):
    _, _, err = validate(folder, "name: iris\nflow: [sklearn, model.pkl]\n", capsys)
    assert (
        f"{folder}/conduit.yaml:1:1: warning: min_replicas: min_replicas 0 (the default) is not honoured by the local "
        "target: one replica stays warm until deleted"
    ) in err


def test_what_the_local_target_honours_is_not_warned(folder: Path, capsys):
    python = honoured.serving_python()
    code, _, err = validate(
        folder,
        f"name: iris\nflow: [sklearn, model.pkl]\ncpu: 1\nmin_replicas: 1\nmax_replicas: 1\npython_version: \"{python}\"\n",
        capsys,
    )
    assert code == 0
    assert [line.split(": warning: ")[1].split(":")[0] for line in err] == ["memory"]  # never enforced


def test_cpu_above_the_cores_here(folder: Path, capsys):
    cores = os.cpu_count() or 1
    if cores >= 32:
        pytest.skip("cpu is at most 32, and this machine has that many cores")
    _, _, err = validate(folder, f"name: iris\nflow: [sklearn, model.pkl]\ncpu: {cores + 1}\n", capsys)
    assert (
        f"{folder}/conduit.yaml:3:6: warning: cpu: cpu {cores + 1} is more than the {cores} cores here: "
        f"the local target's {cores + 1} workers share them (hint: lower cpu to {cores})"
    ) in err


def test_a_gpu_on_a_flow_that_never_uses_one_is_remarked_on_every_target(folder: Path, capsys):
    text = "name: iris\nflow: [sklearn, model.pkl]\nhardware: H100\n"
    remark = (
        f"{folder}/conduit.yaml:3:11: warning: hardware: hardware H100 is a GPU but a sklearn flow never uses one: "
        "it runs on the CPU (hint: use hardware: CPU)"
    )
    for target in ("local", "kubernetes"):
        code, _, err = validate(folder, text, capsys, "--target", target)
        assert code == 0 and remark in err, target


def test_a_gpu_flow_where_no_gpu_is_visible_runs_on_the_cpu_and_says_so(folder: Path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # hides every GPU, whatever this machine has
    text = "name: mlp\nflow: [torch, model.pkl]\nhardware: H100\n"
    _, _, err = validate(folder, text, capsys)
    assert (
        f"{folder}/conduit.yaml:3:11: warning: hardware: hardware H100 is a GPU but none is visible here: "
        "flow[0] (torch) will run on the CPU"
    ) in err
    _, _, err = validate(folder, text, capsys, "--target", "kubernetes")
    assert [line for line in err if "hardware" in line] == []  # the cluster schedules it on a node with that GPU


def test_the_kubernetes_target_honours_every_field(folder: Path, capsys):
    code, _, err = validate(folder, EVERY_FIELD_SET, capsys, "--target", "kubernetes")
    # but the prediction log, on by default, has no sink there unless the manifest names one
    assert (code, err) == (0, [
        f"{folder}/conduit.yaml:1:1: warning: prediction_log: prediction_log records nothing on kubernetes without "
        "prediction_log.url (KServe's logger needs a sink to send to)"
    ])


def test_warnings_become_github_annotations(folder: Path, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    (folder / "conduit.yaml").write_text("name: iris\nflow: [sklearn, model.pkl]\nmax_replicas: 3\n")
    assert main(["validate", str(folder / "conduit.yaml")]) == 0
    assert (
        f"::warning file={folder}/conduit.yaml,line=3,col=15::max_replicas: max_replicas 3 is not honoured by the "
        "local target: one replica serves all load"
    ) in capsys.readouterr().out.splitlines()
