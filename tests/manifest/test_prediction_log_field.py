"""The manifest's `prediction_log`: its shape problems in plain words, its YAML form, the same
manifest from `Conduit(...)`, and what each target says it does not honour of it."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from conduit.manifest import ManifestInvalid, PredictionLog, load
from conduit.manifest.dump import to_yaml
from conduit.targets.honoured import unhonoured

HEAD = "name: iris\nflow: [sklearn, model.pkl]\n"
SINK = "http://message-dumper.default.svc.cluster.local"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([1.0]))
    return tmp_path


def written(folder: Path, text: str) -> Path:
    (folder / "conduit.yaml").write_text(HEAD + text)
    return folder / "conduit.yaml"


def test_every_problem_says_where_and_how_to_fix_it(folder: Path):
    text = "prediction_log:\n  sample: 1.5\n  payload: false\n  url: ftp://sink\n  retention_days: 0\n  max_mb: 0\n"
    with pytest.raises(ManifestInvalid) as caught:
        load(written(folder, text))
    assert [(p.line, ".".join(map(str, p.path)), p.message, p.hint) for p in caught.value.problems] == [
        (4, "prediction_log.sample", "sample must be at most 1.0, got 1.5", None),
        (5, "prediction_log.payload", "unknown key `payload`", "did you mean `payloads`?"),
        (6, "prediction_log.url", "url 'ftp://sink' must be an http:// or https:// URL", f"e.g. `{SINK}`"),
        (7, "prediction_log.retention_days", "retention_days must be at least 1, got 0", None),
        (8, "prediction_log.max_mb", "max_mb must be at least 1, got 0", None),
    ]


def test_left_out_it_means_every_request_with_payloads(folder: Path):
    manifest = load(written(folder, ""))
    assert manifest.prediction_log is None and manifest.prediction_log_settings == PredictionLog()
    assert "prediction_log" not in to_yaml(manifest)
    assert (PredictionLog().enabled, PredictionLog().sample, PredictionLog().payloads) == (True, 1.0, True)


def test_yaml_and_conduit_make_the_same_manifest_and_text(folder: Path, monkeypatch: pytest.MonkeyPatch):
    from conduit import Conduit

    manifest = load(written(folder, "prediction_log:\n  sample: 0.25\n  payloads: false\n"))
    monkeypatch.chdir(folder)
    made = Conduit(name="iris", flow=("sklearn", "model.pkl"), prediction_log={"sample": 0.25, "payloads": False})
    assert made.manifest == manifest
    assert made.to_yaml() == to_yaml(manifest)
    assert to_yaml(manifest).endswith(
        "prediction_log:\n  enabled: true\n  sample: 0.25\n  payloads: false\n  retention_days: 30\n  max_mb: 512\n"
    )
    assert Conduit(name="iris", flow=("sklearn", "model.pkl"), prediction_log=PredictionLog(sample=0.25, payloads=False)).manifest == manifest


NO_URL = "prediction_log records nothing on kubernetes without prediction_log.url (KServe's logger needs a sink to send to)"


@pytest.mark.parametrize(
    "text, kubernetes",
    [
        ("", [NO_URL]),  # the default: a log, and no sink to send it to
        ("prediction_log:\n  enabled: false\n", []),
        (f"prediction_log:\n  url: {SINK}\n", []),
        ("prediction_log:\n  sample: 0.5\n", [NO_URL]),
        (f"prediction_log:\n  url: {SINK}\n  payloads: false\n", ["prediction_log.payloads false: KServe's logger always sends bodies, so no logger is rendered"]),
        (
            f"prediction_log:\n  url: {SINK}\n  sample: 0.5\n  max_mb: 64\n",
            ["prediction_log sample and max_mb are not honoured by the kubernetes target: KServe's logger sends every request to the sink, which keeps them"],
        ),
    ],
)
def test_what_kserves_logger_does_not_do_is_a_kubernetes_warning(folder: Path, text: str, kubernetes: list[str]):
    manifest = load(written(folder, text))
    assert [p.message for p in unhonoured(manifest, "kubernetes") if p.path == ("prediction_log",)] == kubernetes


@pytest.mark.parametrize(
    "text, raw",
    [
        ("", ["prediction_log is not honoured by the kubernetes raw flavour: it has no KServe logger, so nothing is recorded (the default)"]),
        (f"prediction_log:\n  url: {SINK}\n", ["prediction_log is not honoured by the kubernetes raw flavour: it has no KServe logger, so nothing is recorded"]),
        ("prediction_log:\n  enabled: false\n", []),
    ],
)
def test_the_raw_flavour_says_it_records_nothing(folder: Path, text: str, raw: list[str]):
    manifest = load(written(folder, text))
    assert [p.message for p in unhonoured(manifest, "kubernetes", "raw") if p.path == ("prediction_log",)] == raw


def test_render_for_kubernetes_says_what_the_flavour_does_not_honour(folder: Path, capsys, tmp_path: Path):
    from conduit.cli.main import main

    written(folder, f"min_replicas: 1\nprediction_log:\n  url: {SINK}\n")  # the raw flavour keeps one warm
    assert main(["render", str(folder / "conduit.yaml"), "--target", "kubernetes", "--flavor", "raw", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "warning: prediction_log: prediction_log is not honoured by the kubernetes raw flavour" in err
    assert main(["render", str(folder / "conduit.yaml"), "--target", "kubernetes", "--out", str(tmp_path / "out2")]) == 0
    assert "prediction_log" not in capsys.readouterr().err  # serverless: KServe's logger sends to the url


def test_the_local_target_says_it_has_no_use_for_the_url(folder: Path):
    manifest = load(written(folder, f"prediction_log:\n  url: {SINK}\n"))
    assert [p.message for p in unhonoured(manifest, "local") if p.path == ("prediction_log",)] == [
        "prediction_log.url is used by the kubernetes target only: the local target records to $CONDUIT_HOME/predictions/iris.db"
    ]
    assert not [p for p in unhonoured(load(written(folder, "")), "local") if p.path == ("prediction_log",)]
