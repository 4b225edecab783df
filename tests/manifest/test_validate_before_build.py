"""What `validate` catches that the build used to find first: a pickle the runtime could not read
(scanned with pickletools, never unpickled), a `.pt` torch.jit cannot load, a Hugging Face task
the installed transformers does not know, and a hook file that fails to import (imported in a
child process). Every problem is pinned word for word, with its line, column and key."""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from conduit.manifest import ManifestInvalid, load, load_with_warnings
from conduit.manifest.tasks import transformers_tasks

RESAVE = "save the model again (pickle.dump, joblib.dump or cloudpickle.dump) and copy the whole file"


def brief(problem) -> str:
    text = f"{problem.line}:{problem.column}: {problem.key}: {problem.message}"
    return f"{text} (hint: {problem.hint})" if problem.hint else text


def write(folder: Path, text: str) -> Path:
    (folder / "conduit.yaml").write_text(text, encoding="utf-8")
    return folder / "conduit.yaml"


def problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(ManifestInvalid) as caught:
        load(write(folder, text))
    return [brief(problem) for problem in caught.value.problems]


def warnings_of(folder: Path, text: str) -> list[str]:
    return [brief(warning) for warning in load_with_warnings(write(folder, text))[1]]


def sklearn_stage(path: str, hooks: str = "") -> str:
    return f"name: iris\nflow: [sklearn, {path}{', {' + hooks + '}' if hooks else ''}]\n"


# -- pickles ------------------------------------------------------------------------------------


def test_a_file_that_is_not_a_pickle(tmp_path: Path):
    (tmp_path / "model.pkl").write_text("hello\n")
    assert problems(tmp_path, sklearn_stage("model.pkl")) == [
        f"2:17: flow[0].path: 'model.pkl' is not a pickle: it starts with b'hello\\n' (hint: {RESAVE})"
    ]


def test_a_truncated_pickle(tmp_path: Path):
    whole = pickle.dumps({"weights": list(range(100))})
    (tmp_path / "model.pkl").write_bytes(whole[: len(whole) // 2])
    assert problems(tmp_path, sklearn_stage("model.pkl")) == [
        f"2:17: flow[0].path: 'model.pkl' is truncated: its pickle stops after {len(whole) // 2} bytes, "
        f"before its end (hint: {RESAVE})"
    ]


def test_an_empty_pickle_and_a_zip_named_pkl(tmp_path: Path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    (tmp_path / "zipped.pkl").write_bytes(b"PK\x03\x04" + bytes(40))
    text = "name: iris\nflow:\n  - [sklearn_preprocessor, empty.pkl]\n  - [sklearn, zipped.pkl]\n"
    assert problems(tmp_path, text) == [
        f"3:28: flow[0].path: 'empty.pkl' is empty (hint: {RESAVE})",
        "4:15: flow[1].path: 'zipped.pkl' is not a pickle: it is a zip archive (torch.save and TorchScript "
        f"write those) (hint: {RESAVE})",
    ]


def test_real_pickles_pass_joblib_compressed_or_not(tmp_path: Path):
    pytest.importorskip("sklearn")
    import joblib
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1])
    joblib.dump(model, tmp_path / "plain.pkl")  # raw array bytes between the opcodes
    joblib.dump(model, tmp_path / "small.pkl", compress=3)
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(model, protocol=0))
    text = "name: iris\nflow:\n  - [sklearn_classifier, plain.pkl]\n  - [sklearn, small.pkl]\n  - [sklearn, old.pkl]\n"
    assert load(write(tmp_path, text)).flow[0].path == "plain.pkl"


def test_a_truncated_joblib_file(tmp_path: Path):
    pytest.importorskip("sklearn")
    import joblib
    from sklearn.linear_model import LogisticRegression

    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), tmp_path / "whole.pkl")
    cut = (tmp_path / "whole.pkl").read_bytes()[:-3]
    (tmp_path / "model.pkl").write_bytes(cut)
    assert problems(tmp_path, sklearn_stage("model.pkl")) == [
        f"2:17: flow[0].path: 'model.pkl' is truncated: its pickle stops after {len(cut)} bytes, before its end "
        f"(hint: {RESAVE})"
    ]


def test_another_frameworks_pickle_is_a_warning_that_names_the_model_type(tmp_path: Path):
    torch = pytest.importorskip("torch")
    cloudpickle = pytest.importorskip("cloudpickle")
    (tmp_path / "net.pkl").write_bytes(cloudpickle.dumps(torch.nn.Sequential(torch.nn.Linear(2, 1))))
    assert warnings_of(tmp_path, sklearn_stage("net.pkl")) == [
        "2:17: flow[0].path: 'net.pkl' holds a torch model, but model_type sklearn serves sklearn models "
        "(hint: model_type: torch)"
    ]


def test_a_torch_save_file_is_not_torchscript(tmp_path: Path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(2, 1).state_dict(), tmp_path / "weights.pt")
    assert problems(tmp_path, "name: iris\nflow: [torch, weights.pt]\n") == [
        "2:15: flow[0].path: 'weights.pt' was written by torch.save, not TorchScript: torch.jit.load cannot read "
        "it (hint: save it with torch.jit.script(model).save(path), or cloudpickle the module to a .pkl)"
    ]


# -- Hugging Face tasks -------------------------------------------------------------------------


def hf_stage(task: str, options: str = "") -> str:
    return f"name: bert\nflow:\n  - model_type: huggingface_pipeline\n    task: {task}\n    model: hf_model\n{options}"


@pytest.fixture
def hf_folder(tmp_path: Path) -> Path:
    (tmp_path / "hf_model").mkdir()
    return tmp_path


def test_an_unknown_task_with_a_did_you_mean(hf_folder: Path):
    tasks = transformers_tasks() or pytest.skip("transformers is not installed here")
    assert problems(hf_folder, hf_stage("text-clasification")) == [
        f"4:11: flow[0].task: 'text-clasification' is not a Hugging Face pipeline task in transformers "
        f"{tasks.version} (hint: did you mean `text-classification`?)"
    ]


def test_aliases_and_parametrised_tasks_are_known(hf_folder: Path):
    tasks = transformers_tasks() or pytest.skip("transformers is not installed here")
    assert tasks.knows("sentiment-analysis") and tasks.knows("ner") and "text-classification" in tasks.supported
    assert load(write(hf_folder, hf_stage("sentiment-analysis"))).flow[0].task == "sentiment-analysis"


def test_a_removed_task_says_what_to_use_instead(hf_folder: Path):
    tasks = transformers_tasks() or pytest.skip("transformers is not installed here")
    if "summarization" not in tasks.removed:
        pytest.skip(f"transformers {tasks.version} still has summarization")
    assert problems(hf_folder, hf_stage("summarization")) == [
        f"4:11: flow[0].task: task 'summarization' was removed from transformers {tasks.version} "
        f"(hint: {tasks.removed['summarization']})"
    ]


def test_a_task_of_the_models_own_code_is_a_warning(hf_folder: Path):
    tasks = transformers_tasks() or pytest.skip("transformers is not installed here")
    found = warnings_of(hf_folder, hf_stage("my-task", "    options:\n      trust_remote_code: true\n"))
    assert found == [
        f"4:11: flow[0].task: 'my-task' is not a task transformers {tasks.version} knows; the model's own code must "
        f"define it (hint: tasks: {', '.join(tasks.names)})"
    ]


def test_without_transformers_the_task_is_a_warning_not_silence(hf_folder: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # what an environment without it looks like to find_spec
    transformers_tasks.cache_clear()
    try:
        found = warnings_of(hf_folder, hf_stage("text-clasification"))
    finally:
        transformers_tasks.cache_clear()
    assert found == [
        "4:11: flow[0].task: task 'text-clasification' could not be checked: transformers is not installed here "
        "(hint: install conduit-deploy[huggingface] here to check it before the build)"
    ]


# -- hooks, imported in a child process ---------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps("stand-in"))
    return tmp_path


def test_a_hook_whose_import_raises(project: Path):
    (project / "hooks.py").write_text("raise RuntimeError('no GPU here')\n\ndef pre(data):\n    return data\n")
    assert problems(project, sklearn_stage("model.pkl", "pre: hooks.py:pre")) == [
        "2:34: flow[0].pre: hook file 'hooks.py' fails to import: RuntimeError: no GPU here"
    ]


def test_a_syntax_error_in_a_module_the_hook_imports_names_its_file_and_line(project: Path):
    (project / "helpers.py").write_text("x = 1\ndef broken(:\n    pass\n")
    (project / "hooks.py").write_text("import helpers\n\ndef post(output):\n    return output\n")
    assert problems(project, sklearn_stage("model.pkl", "post: hooks.py:post")) == [
        "2:35: flow[0].post: hook file 'hooks.py' fails to import: SyntaxError: invalid syntax (helpers.py, line 2)"
    ]


def test_a_missing_module_is_an_error_unless_the_requirements_name_it(project: Path):
    (project / "hooks.py").write_text("import conduit_test_absent_module\n\ndef pre(data):\n    return data\n")
    text = sklearn_stage("model.pkl", "pre: hooks.py:pre")
    assert problems(project, text) == [
        "2:34: flow[0].pre: hook file 'hooks.py' fails to import: ModuleNotFoundError: No module named "
        "'conduit_test_absent_module' (hint: add `conduit_test_absent_module` to requirements_file, or install it)"
    ]
    (project / "requirements.txt").write_text("# the Bento installs these\nconduit-test-absent-module==1.0\n")
    assert warnings_of(project, text + "requirements_file: requirements.txt\n") == [
        "2:34: flow[0].pre: hook file 'hooks.py' imports `conduit_test_absent_module`, which is not installed here "
        "(hint: the Bento will install it (requirements_file or a model type names it); not checked further)"
    ]


def test_an_unguarded_script_that_deploys_itself_gets_the_reentry_message(project: Path):
    (project / "deploy.py").write_text(
        "from conduit import Conduit\n\ndef pre(data):\n    return data\n\n"
        "Conduit(name='iris', flow=('sklearn', 'model.pkl', {'pre': pre})).deploy()\n"
    )
    [problem] = problems(project, sklearn_stage("model.pkl", "pre: deploy.py:pre"))
    assert problem.startswith("2:34: flow[0].pre: hook file 'deploy.py' fails to import: importing hook file deploy.py ")
    assert 'put the script\'s top-level code under `if __name__ == "__main__":`' in problem


def test_a_hook_that_imports_cleanly_passes(project: Path):
    (project / "hooks.py").write_text("import json\n\ndef post(output):\n    return json.loads(json.dumps(output))\n")
    assert load(write(project, sklearn_stage("model.pkl", "post: hooks.py:post"))).flow[0].post == "hooks.py:post"
