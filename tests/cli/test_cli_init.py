"""`conduit init`: a starter manifest for the artifact at hand, typed from what the artifact holds,
and never one that `conduit validate` would refuse."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Callable

import pytest

from conduit.cli.main import main
from conduit.manifest import load

STARTER = (
    "# yaml-language-server: $schema=conduit.schema.json\n"
    "apiVersion: conduit/v1\n"
    "name: my-project\n"
    "project: default\n"
    "flow:\n"
    "  - model_type: sklearn\n"
    "    path: model.pkl\n"
    "hardware: CPU\n"
    "cpu: 2\n"
    "memory: 8.0\n"
    "cooldown: 60\n"
    "min_replicas: 0\n"
    "max_replicas: 2\n"
    "force_rebuild: false\n"
)
POINTS, LABELS = [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], [0, 1, 0, 1]


def stand_in(folder: Path, name: str = "model.pkl") -> None:
    """A real pickle whose classes name no framework: init falls back to the suffix."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))


def test_init_in_an_empty_folder_writes_nothing_and_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture):
    project = tmp_path / "My_Project"
    assert main(["init", str(project)]) == 1
    assert not project.exists()
    assert capsys.readouterr().err.splitlines() == [
        "error: wrote nothing: `conduit validate` would refuse this conduit.yaml:",
        f"  flow[0].path: file 'model.pkl' not found next to the manifest (hint: looked for {project}/model.pkl)",
        f"next: put your model at {project}/model.pkl (or pass --path), then run `conduit init` again",
    ]
    stand_in(project)
    assert main(["init", str(project)]) == 0
    assert (project / "conduit.yaml").read_text() == STARTER
    assert (project / "conduit.schema.json").is_file()
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"wrote {project}/conduit.yaml (sklearn, model.pkl: model type from its name)",
        f"{project}/conduit.yaml is valid; next: `conduit run` or `conduit apply`",
    ]
    assert main(["validate", str(project)]) == 0


def sklearn_model(make: Callable[[], object]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        pytest.importorskip("sklearn")
        (folder / "model.pkl").write_bytes(pickle.dumps(make().fit(POINTS, LABELS)))

    return write


def random_forest():
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=3, random_state=0)


def scaled_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression())


def linear_regression():
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def scaler():
    from sklearn.preprocessing import StandardScaler

    return StandardScaler()


def compressed_joblib_classifier(folder: Path) -> None:
    pytest.importorskip("sklearn")
    import joblib
    from sklearn.svm import SVC

    joblib.dump(SVC().fit(POINTS, LABELS), folder / "model.pkl", compress=3)


def cloudpickled_torch_module(folder: Path) -> None:
    torch = pytest.importorskip("torch")
    cloudpickle = pytest.importorskip("cloudpickle")

    class TinyNet(torch.nn.Module):  # defined here, so cloudpickle stores the class by value
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 2)

        def forward(self, inputs):
            return self.layer(inputs)

    (folder / "net.pkl").write_bytes(cloudpickle.dumps(TinyNet()))


def torchscript_module(folder: Path) -> None:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit's own notice
        torch.jit.script(torch.nn.Linear(2, 1)).save(str(folder / "net.pt"))


def xgboost_model(kind: str, file_name: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        xgboost = pytest.importorskip("xgboost")
        getattr(xgboost, kind)(n_estimators=2).fit(POINTS, LABELS).save_model(folder / file_name)

    return write


def spacy_pipeline(folder: Path) -> None:
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(folder / "ner")


def hugging_face_model(architecture: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        pytest.importorskip("torch")
        transformers = pytest.importorskip("transformers")
        config = transformers.BertConfig(
            vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
            max_position_embeddings=8,
        )  # fmt: skip
        getattr(transformers, architecture)(config).save_pretrained(folder / "bert")

    return write


@pytest.mark.parametrize(
    "make, model_type, artifact, hardware",
    [
        (sklearn_model(random_forest), "sklearn_classifier", "model.pkl", "CPU"),
        (sklearn_model(scaled_logistic_regression), "sklearn_classifier", "model.pkl", "CPU"),
        (sklearn_model(linear_regression), "sklearn", "model.pkl", "CPU"),
        (sklearn_model(scaler), "sklearn_preprocessor", "model.pkl", "CPU"),
        (compressed_joblib_classifier, "sklearn_classifier", "model.pkl", "CPU"),
        (cloudpickled_torch_module, "torch", "net.pkl", "AMPERE_A5000"),
        (torchscript_module, "torch", "net.pt", "AMPERE_A5000"),
        (xgboost_model("XGBClassifier", "model.json"), "xgboost_classifier", "model.json", "CPU"),
        (xgboost_model("XGBRegressor", "model.ubj"), "xgboost_regressor", "model.ubj", "CPU"),
        (lambda folder: (folder / "net.onnx").write_text("x"), "onnx", "net.onnx", "AMPERE_A5000"),
        (spacy_pipeline, "spacy", "ner", "CPU"),
        (hugging_face_model("BertForSequenceClassification"), "huggingface_pipeline", "bert", "AMPERE_A5000"),
    ],
    ids=[
        "random-forest", "pipeline-ending-in-a-classifier", "regressor", "preprocessor", "compressed-joblib",
        "cloudpickled-torch", "torchscript", "xgboost-classifier-json", "xgboost-regressor-ubj", "onnx", "spacy",
        "huggingface",
    ],
)  # fmt: skip
def test_init_types_the_artifact_by_what_it_holds(tmp_path: Path, capsys, make, model_type, artifact, hardware):
    make(tmp_path)
    assert main(["init", str(tmp_path), "--name", "found"]) == 0
    manifest = load(tmp_path)
    stage = manifest.flow[0]
    assert (stage.model_type.value, stage.path or stage.model, manifest.hardware.value) == (model_type, artifact, hardware)
    assert f"wrote {tmp_path}/conduit.yaml ({model_type}, {artifact}" in capsys.readouterr().out


def test_a_hugging_face_folder_names_the_task_its_architecture_serves(tmp_path: Path):
    hugging_face_model("BertForMaskedLM")(tmp_path)
    assert main(["init", str(tmp_path), "--name", "masked"]) == 0
    assert load(tmp_path).flow[0].task == "fill-mask"


def test_the_description_says_what_was_read(tmp_path: Path, capsys: pytest.CaptureFixture):
    sklearn_model(scaled_logistic_regression)(tmp_path)
    assert main(["init", str(tmp_path), "--name", "found"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"wrote {tmp_path}/conduit.yaml (sklearn_classifier, model.pkl: "
        "a sklearn classifier (sklearn.linear_model._logistic.LogisticRegression))"
    )


def test_init_writes_nothing_that_validate_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture):
    whole = pickle.dumps({"weights": list(range(50))})
    (tmp_path / "model.pkl").write_bytes(whole[:-9])
    assert main(["init", str(tmp_path), "--name", "cut"]) == 1
    assert not (tmp_path / "conduit.yaml").exists() and not (tmp_path / "conduit.schema.json").exists()
    assert capsys.readouterr().err.splitlines() == [
        "error: wrote nothing: `conduit validate` would refuse this conduit.yaml:",
        f"  flow[0].path: 'model.pkl' is truncated: its pickle stops after {len(whole) - 9} bytes, before its end "
        "(hint: save the model again (pickle.dump, joblib.dump or cloudpickle.dump) and copy the whole file)",
    ]


def test_a_readable_artifact_is_preferred_to_a_broken_one(tmp_path: Path):
    (tmp_path / "a_broken.pkl").write_bytes(b"")
    stand_in(tmp_path, "model.pkl")
    assert main(["init", str(tmp_path), "--name", "prefers"]) == 0
    assert load(tmp_path).flow[0].path == "model.pkl"


def test_init_with_options(tmp_path: Path):
    (tmp_path / "model.json").write_text("{}")
    target = tmp_path / "prod.conduit.yaml"
    assert main(["init", "--name", "xgb", "--model-type", "xgboost_classifier", "--path", "model.json", str(target)]) == 0
    manifest = load(target)
    assert (manifest.name, manifest.flow[0].model_type.value, manifest.flow[0].path) == ("xgb", "xgboost_classifier", "model.json")


def test_init_uses_a_schema_up_the_tree(tmp_path: Path):
    (tmp_path / "conduit.schema.json").write_text("{}")
    stand_in(tmp_path / "deploy")
    assert main(["init", str(tmp_path / "deploy")]) == 0
    assert (tmp_path / "deploy" / "conduit.yaml").read_text().startswith("# yaml-language-server: $schema=../conduit.schema.json\n")
    assert not (tmp_path / "deploy" / "conduit.schema.json").exists()


def test_init_refuses_to_overwrite_and_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "conduit.yaml").write_text("keep me\n")
    assert main(["init", str(tmp_path)]) == 2
    assert (tmp_path / "conduit.yaml").read_text() == "keep me\n"
    assert main(["init", "--force", "--name", "Bad_Name", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: name 'Bad_Name' may hold only lowercase letters, digits and hyphens (hint: did you mean `bad-name`?)"
    )
    stand_in(tmp_path)
    assert main(["init", "--force", "--name", "good", str(tmp_path)]) == 0
    assert "name: good\n" in (tmp_path / "conduit.yaml").read_text()
