"""A corpus of bad manifests, each with the exact problems the loader must report.

Every expected line reads `line:column: key.path: message (hint: ...)`, so each case pins the
message, the position and the key path word for word. `SCHEMA` says whether conduit.schema.json
can express the rule: True/False cases must get the same verdict from jsonschema (see
test_schema.py); None means the YAML itself is broken, so there is nothing for a schema to check.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Optional

import pytest

from conduit.manifest import ManifestInvalid, load

BASE = "name: iris\nflow:\n  - model_type: sklearn\n    path: model.pkl\n"  # lines 1-4; additions start on line 5
ALLOWED = (
    "apiVersion, name, project, flow, hardware, cpu, memory, cooldown, min_replicas, max_replicas, "
    "replica_concurrency, requirements_file, force_rebuild, python_version, batching, prediction_log"
)
MODEL_TYPES = (
    "sklearn, sklearn_classifier, sklearn_preprocessor, torch, xgboost_regressor, xgboost_classifier, "
    "onnx, spacy, huggingface_pipeline"
)


def stage(body: str) -> str:
    """A manifest whose only stage is `body` (lines from 3 on, indented as a list item)."""
    return "name: iris\nflow:\n  - " + body.replace("\n", "\n    ") + "\n"


class Case(NamedTuple):
    id: str
    text: str
    expected: list[str]
    schema: Optional[bool]  # can conduit.schema.json express this rule? None: not YAML to check


CASES = [
    # -- parse: YAML traps in plain words -----------------------------------------------------------
    Case("empty file", "", ["1:1: the file is empty; a manifest needs at least `name` and `flow`"], None),
    Case("only a comment", "# TODO\n", ["1:1: the file is empty; a manifest needs at least `name` and `flow`"], None),
    Case("a list, not a mapping", "- sklearn\n- model.pkl\n",
         ["1:1: the file holds a list; a manifest is a mapping of keys such as `name:` and `flow:`"], None),
    Case("a single value", "iris\n",
         ["1:1: the file holds the single value 'iris'; a manifest is a mapping of keys such as `name:` and `flow:`"], None),
    Case("two documents", BASE + "---\nname: other\n",
         ["5:1: the file holds more than one YAML document (a second `---`); a manifest is one document "
          "(hint: remove the second document)"], None),
    Case("tab indentation", "name: iris\nflow:\n\t- [sklearn, model.pkl]\n",
         ["3:1: this line is indented with a tab; YAML indents with spaces only (hint: replace the tab with spaces)"], None),
    Case("unclosed bracket", "name: iris\nflow: [sklearn, model.pkl\n",
         ["3:1: YAML syntax error: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)"], None),
    Case("duplicate key", BASE + "cpu: 2\ncpu: 4\n",
         ["6:1: cpu: duplicate key `cpu` (first written on line 5) (hint: keep one of them)"], None),
    Case("unknown tag", BASE + "cpu: !int 2\n", ["5:6: cpu: unknown YAML tag `!int` (hint: remove the tag)"], None),
    Case("list as a key", BASE + "? [a, b]\n: c\n", ["5:3: a key must be a plain word, not a list or a mapping"], None),
    # -- schema: required and unknown keys ----------------------------------------------------------
    Case("no name", "flow: [sklearn, model.pkl]\n",
         ["1:1: name: required key `name` is missing (hint: e.g. `name: iris-classifier`)"], True),
    Case("no flow", "name: iris\n",
         ["1:1: flow: required key `flow` is missing (hint: e.g. `flow: [sklearn, model.pkl]`)"], True),
    Case("misspelt key", BASE + "max_replica: 3\n",
         ["5:1: max_replica: unknown key `max_replica` (hint: did you mean `max_replicas`?)"], True),
    Case("unknown key", BASE + "colour: blue\n", [f"5:1: colour: unknown key `colour` (hint: allowed keys: {ALLOWED})"], True),
    Case("misspelt stage key", "name: iris\nflow:\n  - model_type: sklearn\n    paht: model.pkl\n",
         ["3:5: flow[0].path: a sklearn stage needs `path`: a .pkl file (hint: e.g. `path: model.pkl`)",
          "4:5: flow[0].paht: unknown key `paht` (hint: did you mean `path`?)"], True),
    Case("misspelt batching key", BASE + "batching:\n  max_batch: 8\n",
         ["6:3: batching.max_batch: unknown key `max_batch` (hint: did you mean `max_batch_size`?)"], True),
    # -- schema: the name ---------------------------------------------------------------------------
    Case("name with capitals", "name: Iris_Model\nflow: [sklearn, model.pkl]\n",
         ["1:7: name: name 'Iris_Model' may hold only lowercase letters, digits and hyphens "
          "(hint: did you mean `iris-model`?)"], True),
    Case("name too long", "name: a-very-long-deployment-name\nflow: [sklearn, model.pkl]\n",
         ["1:7: name: name 'a-very-long-deployment-name' is 27 characters long; at most 20 are allowed "
          "(hint: did you mean `long-deployment-name`?)"], True),
    Case("name starts with a digit", "name: 2fast\nflow: [sklearn, model.pkl]\n",
         ["1:7: name: name '2fast' must start with a letter and end with a letter or digit (hint: did you mean `m-2fast`?)"], True),
    Case("name ends with a hyphen", "name: iris-\nflow: [sklearn, model.pkl]\n",
         ["1:7: name: name 'iris-' must start with a letter and end with a letter or digit (hint: did you mean `iris`?)"], True),
    Case("empty name", "name: ''\nflow: [sklearn, model.pkl]\n",
         ["1:7: name: name is empty (hint: did you mean `my-model`?)"], True),
    Case("name is a number", "name: 123\nflow: [sklearn, model.pkl]\n",
         ["1:7: name: name must be text, got 123 (hint: put it in quotes)"], True),
    # -- schema: the flow ---------------------------------------------------------------------------
    Case("empty flow", "name: iris\nflow: []\n",
         ["2:7: flow: flow is empty; list at least one stage (hint: e.g. `flow: [sklearn, model.pkl]`)"], True),
    Case("flow is a path", "name: iris\nflow: model.pkl\n",
         ["2:7: flow: flow must be one stage or a list of stages, got 'model.pkl' (hint: e.g. `flow: [sklearn, model.pkl]`)"], True),
    Case("stage is a path", "name: iris\nflow:\n  - model.pkl\n",
         ["3:5: flow[0]: a stage must be a mapping or a list [model_type, path], got 'model.pkl' "
          "(hint: e.g. `{{model_type: sklearn, path: model.pkl}}` or `[sklearn, model.pkl]`)"], True),
    Case("stage tuple too long", "name: iris\nflow:\n  - [sklearn, model.pkl, x, y]\n",
         ["3:5: flow[0]: a stage must be a mapping or a list [model_type, path], got a list "
          "(hint: e.g. `{{model_type: sklearn, path: model.pkl}}` or `[sklearn, model.pkl]`)"], True),
    Case("misspelt model type", "name: iris\nflow: [sklern, model.pkl]\n",
         ["2:8: flow[0].model_type: 'sklern' is not a model type (hint: did you mean `sklearn`?)"], True),
    Case("unknown model type", "name: iris\nflow: [tensorflow, model.pkl]\n",
         [f"2:8: flow[0].model_type: 'tensorflow' is not a model type (hint: one of: {MODEL_TYPES})"], True),
    Case("stage without model_type", "name: iris\nflow:\n  - path: model.pkl\n",
         ["3:5: flow[0].model_type: required key `model_type` is missing (hint: e.g. `model_type: sklearn`)"], True),
    Case("stage without path", stage("model_type: sklearn"),
         ["3:5: flow[0].path: a sklearn stage needs `path`: a .pkl file (hint: e.g. `path: model.pkl`)"], True),
    # -- semantics: artifacts -----------------------------------------------------------------------
    Case("missing model file", stage("model_type: sklearn\npath: missing.pkl"),
         ["4:11: flow[0].path: file 'missing.pkl' not found next to the manifest (hint: looked for {dir}/missing.pkl)"], False),
    Case("onnx file for sklearn", stage("model_type: sklearn\npath: model.onnx"),
         ["4:11: flow[0].path: 'model.onnx' does not fit model_type sklearn: it expects a .pkl file"], False),
    Case("onnx file for torch", "name: iris\nflow: [torch, model.onnx]\n",
         ["2:15: flow[0].path: 'model.onnx' does not fit model_type torch: it expects a .pkl or .pt file"], False),
    Case("pt file for xgboost", "name: iris\nflow: [xgboost_regressor, model.pt]\n",
         ["2:27: flow[0].path: 'model.pt' does not fit model_type xgboost_regressor: it expects a .pkl, .json or .ubj file"],
         False),
    Case("file for spacy", stage("model_type: spacy\npath: model.pkl"),
         ["4:11: flow[0].path: 'model.pkl' is a file; model_type spacy expects a folder saved by nlp.to_disk"], False),
    Case("missing spacy folder", stage("model_type: spacy\npath: ner_model"),
         ["4:11: flow[0].path: folder 'ner_model' not found next to the manifest (hint: looked for {dir}/ner_model)"], False),
    Case("folder for sklearn", stage("model_type: sklearn\npath: folder.pkl"),
         ["4:11: flow[0].path: 'folder.pkl' is a folder; model_type sklearn expects a .pkl file"], False),
    Case("second stage wrong", BASE + "  - [sklearn, model.onnx]\n",
         ["5:15: flow[1].path: 'model.onnx' does not fit model_type sklearn: it expects a .pkl file"], False),
    Case("missing requirements", BASE + "requirements_file: reqs.txt\n",
         ["5:20: requirements_file: file 'reqs.txt' not found next to the manifest (hint: looked for {dir}/reqs.txt)"], False),
    # -- Hugging Face stages ------------------------------------------------------------------------
    Case("huggingface without task and model", stage("model_type: huggingface_pipeline"),
         ["3:5: flow[0].task: a huggingface_pipeline stage needs `task` (hint: e.g. `task: text-classification`)",
          "3:5: flow[0].model: a huggingface_pipeline stage needs `model` (hint: e.g. `model: hf_model`)"], True),
    Case("huggingface with path", stage("model_type: huggingface_pipeline\ntask: fill-mask\nmodel: hf_model\npath: hf_model"),
         ["6:5: flow[0].path: a huggingface_pipeline stage takes no `path` "
          "(hint: name the model with `model:` (a local folder or a hub id))"], True),
    Case("huggingface as a tuple", "name: iris\nflow: [huggingface_pipeline, hf_model]\n",
         ["2:7: flow[0].task: a huggingface_pipeline stage needs `task` (hint: e.g. `task: text-classification`)",
          "2:7: flow[0].model: a huggingface_pipeline stage needs `model` (hint: e.g. `model: hf_model`)",
          "2:30: flow[0].path: a huggingface_pipeline stage takes no `path` "
          "(hint: name the model with `model:` (a local folder or a hub id))"], True),
    Case("task on sklearn", stage("model_type: sklearn\npath: model.pkl\ntask: text-classification"),
         ["5:5: flow[0].task: `task` is only for huggingface_pipeline stages (hint: remove it)"], True),
    Case("options on onnx", stage("model_type: onnx\npath: model.onnx\noptions:\n  top_k: 2"),
         ["5:5: flow[0].options: `options` is only for huggingface_pipeline stages (hint: remove it)"], True),
    Case("options not a mapping", stage("model_type: huggingface_pipeline\ntask: fill-mask\nmodel: hf_model\noptions: fast"),
         ["6:14: flow[0].options: options must be a mapping, got 'fast'"], True),
    # -- hooks --------------------------------------------------------------------------------------
    Case("hook without function", stage("model_type: sklearn\npath: model.pkl\npost: hooks.to_labels"),
         ["5:11: flow[0].post: hook 'hooks.to_labels' must be written `file.py:function` (hint: e.g. `hooks.py:to_labels`)"],
         True),
    Case("missing hook file", stage("model_type: sklearn\npath: model.pkl\npre: prep.py:clean"),
         ["5:10: flow[0].pre: hook file 'prep.py' not found next to the manifest (hint: looked for {dir}/prep.py)"], False),
    Case("misspelt hook function", stage("model_type: sklearn\npath: model.pkl\npost: hooks.py:to_label"),
         ["5:11: flow[0].post: hook file 'hooks.py' has no top-level function `to_label` (hint: did you mean `to_labels`?)"],
         False),
    Case("unknown hook function", stage("model_type: sklearn\npath: model.pkl\npre: hooks.py:clean"),
         ["5:10: flow[0].pre: hook file 'hooks.py' has no top-level function `clean` "
          "(hint: functions there: to_features, to_labels)"], False),
    Case("hook file does not parse", stage("model_type: sklearn\npath: model.pkl\npre: broken.py:f"),
         ["5:10: flow[0].pre: hook file 'broken.py' does not parse: invalid syntax (line 1)"], False),
    Case("hooks in the tuple form", "name: iris\nflow: [sklearn, model.pkl, {post: hooks.py:labels}]\n",
         ["2:35: flow[0].post: hook file 'hooks.py' has no top-level function `labels` (hint: did you mean `to_labels`?)"],
         False),
    # -- resources and scaling ----------------------------------------------------------------------
    Case("too many cpus", BASE + "cpu: 64\n", ["5:6: cpu: cpu must be at most 32, got 64"], True),
    Case("zero cpus", BASE + "cpu: 0\n", ["5:6: cpu: cpu must be at least 1, got 0"], True),
    Case("fractional cpus", BASE + "cpu: 2.5\n", ["5:6: cpu: cpu must be a whole number, got 2.5"], True),
    Case("quoted cpus", BASE + "cpu: '2'\n", ["5:6: cpu: cpu must be a whole number, got '2'"], True),
    Case("memory in words", BASE + "memory: eight\n", ["5:9: memory: memory must be a number, got 'eight'"], True),
    Case("too little memory", BASE + "memory: 1.5\n", ["5:9: memory: memory must be at least 2.0, got 1.5"], True),
    Case("too much memory", BASE + "memory: 512\n", ["5:9: memory: memory must be at most 256.0, got 512"], True),
    Case("memory over the hardware", BASE + "hardware: TURING_4000\nmemory: 100\n",
         ["6:9: memory: memory 100.0 GB is more than TURING_4000 allows (at most 64.0 GB) "
          "(hint: lower memory to 64.0 or choose larger hardware)"], False),
    Case("memory over the default gpu", "name: iris\nflow: [onnx, model.onnx]\nmemory: 200.0\n",
         ["3:9: memory: memory 200.0 GB is more than AMPERE_A5000 allows (at most 128.0 GB) "
          "(hint: lower memory to 128.0 or choose larger hardware)"], False),
    Case("min above max", BASE + "min_replicas: 3\n",
         ["5:15: min_replicas: min_replicas (3) is greater than max_replicas (2) "
          "(hint: raise max_replicas to 3 or lower min_replicas)"], False),
    Case("zero max replicas", BASE + "max_replicas: 0\n", ["5:15: max_replicas: max_replicas must be at least 1, got 0"], True),
    Case("negative cooldown", BASE + "cooldown: -5\n", ["5:11: cooldown: cooldown must be at least 0, got -5"], True),
    Case("yes is not a boolean", BASE + "force_rebuild: yes\n",
         ["5:16: force_rebuild: force_rebuild must be true or false, got 'yes'"], True),
    Case("lowercase hardware", BASE + "hardware: a100\n",
         ["5:11: hardware: 'a100' is not a hardware name (hint: did you mean `A100`?)"], True),
    Case("unknown hardware", BASE + "hardware: T4\n",
         ["5:11: hardware: 'T4' is not a hardware name (hint: one of: CPU, GPU, A10, TURING_4000, TURING_5000, "
          "AMPERE_A4000, AMPERE_A5000, AMPERE_A6000, A100, AMPERE_A100, L4, L40S, H100, H200)"], True),
    Case("batching is not a mapping", BASE + "batching: true\n", ["5:11: batching: batching must be a mapping, got true"], True),
    Case("batch of zero", BASE + "batching:\n  max_batch_size: 0\n",
         ["6:19: batching.max_batch_size: max_batch_size must be at least 1, got 0"], True),
    # -- versions -----------------------------------------------------------------------------------
    Case("python 3.8", BASE + "python_version: '3.8'\n",
         ['5:17: python_version: Python 3.8 is not supported: its support ended in September 2023 (hint: use "3.9" or later)'],
         True),
    Case("unquoted python 3.8", BASE + "python_version: 3.8\n",
         ['5:17: python_version: Python 3.8 is not supported: its support ended in September 2023 (hint: use "3.9" or later)'],
         True),
    Case("python 2.7", BASE + "python_version: '2.7'\n",
         ["5:17: python_version: Python 2.7 is not supported (hint: one of: 3.9, 3.10, 3.11, 3.12, 3.13)"], True),
    Case("unquoted python 3.1", BASE + "python_version: 3.1\n",
         ["5:17: python_version: Python 3.1 is not supported (hint: one of: 3.9, 3.10, 3.11, 3.12, 3.13)"], True),
    Case("future apiVersion", "apiVersion: conduit/v2\n" + BASE,
         ["1:13: apiVersion: unknown apiVersion 'conduit/v2' (hint: this conduit reads `conduit/v1`)"], True),
    # -- project (a Kubernetes namespace) and replica_concurrency -----------------------------------
    Case("project with capitals", BASE + "project: Team_A\n",
         ["5:10: project: project 'Team_A' may hold only lowercase letters, digits and hyphens (hint: did you mean `team-a`?)"],
         True),
    Case("project ending with a hyphen", BASE + "project: team-\n",
         ["5:10: project: project 'team-' must start and end with a letter or digit (hint: did you mean `team`?)"], True),
    Case("project too long", BASE + "project: " + "a" * 64 + "\n",
         [f"5:10: project: project '{'a' * 64}' is 64 characters long; at most 63 are allowed (hint: did you mean `{'a' * 63}`?)"],
         True),
    Case("project a Kubernetes namespace", BASE + "project: kube-system\n",
         [("5:10: project: project 'kube-system' starts with `kube-`, which Kubernetes keeps for its own namespaces "
           "(hint: did you mean `system`?)")], False),
    Case("replica_concurrency zero", BASE + "replica_concurrency: 0\n",
         ["5:22: replica_concurrency: replica_concurrency must be at least 1, got 0"], True),
    Case("replica_concurrency too high", BASE + "replica_concurrency: 1001\n",
         ["5:22: replica_concurrency: replica_concurrency must be at most 1000, got 1001"], True),
    # -- everything at once -------------------------------------------------------------------------
    Case("problems from every phase", "name: Iris\nflow:\n  - [sklearn, missing.pkl]\ncpu: 99\nmax_replica: 3\n",
         ["1:7: name: name 'Iris' may hold only lowercase letters, digits and hyphens (hint: did you mean `iris`?)",
          "3:15: flow[0].path: file 'missing.pkl' not found next to the manifest (hint: looked for {dir}/missing.pkl)",
          "4:6: cpu: cpu must be at most 32, got 99",
          "5:1: max_replica: unknown key `max_replica` (hint: did you mean `max_replicas`?)"], True),
]


def brief(problem) -> str:
    text = f"{problem.line}:{problem.column}: " + (f"{problem.key}: " if problem.path else "") + problem.message
    return f"{text} (hint: {problem.hint})" if problem.hint else text


def problems_of(folder: Path, text: str) -> list:
    file = folder / "conduit.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestInvalid) as caught:
        load(file)
    assert all(problem.file == str(file) for problem in caught.value.problems)
    return caught.value.problems


def test_the_corpus_is_large_and_distinct():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len({case.text for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_manifest(case: Case, artifacts: Path):
    expected = [line.format(dir=artifacts) for line in case.expected]
    assert [brief(problem) for problem in problems_of(artifacts, case.text)] == expected


def test_rendered_problem_names_file_line_column_and_key(artifacts: Path):
    problem = problems_of(artifacts, stage("model_type: sklearn\npath: missing.pkl"))[0]
    assert str(problem) == (
        f"{artifacts}/conduit.yaml:4:11: flow[0].path: file 'missing.pkl' not found next to the manifest "
        f"(hint: looked for {artifacts}/missing.pkl)"
    )
    assert (problem.line, problem.column, problem.path, problem.value) == (4, 11, ("flow", 0, "path"), "missing.pkl")


def test_invalid_manifest_error_lists_every_problem(artifacts: Path):
    file = artifacts / "conduit.yaml"
    file.write_text("name: iris\nflow: [sklearn, missing.pkl]\ncpu: 0\n")
    with pytest.raises(ManifestInvalid) as caught:
        load(file)
    assert str(caught.value).splitlines() == [
        f"{file} is invalid (2 problems):",
        f"  {file}:2:17: flow[0].path: file 'missing.pkl' not found next to the manifest (hint: looked for {artifacts}/missing.pkl)",
        f"  {file}:3:6: cpu: cpu must be at least 1, got 0",
    ]
    assert caught.value.http_status == 400
