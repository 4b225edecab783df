"""Hooks defined in the user's own script: never re-run the script, or refuse saying what to do.

Each script runs for real in a subprocess with a timeout: a script that re-ran itself would print
its top-level marker more than once or never end.
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression

from conduit.runtimes.hooks import HookReentry, import_in_subprocess, load_hook

from .helpers import IRIS_POINTS, save_pickle

MARKER = "TOP LEVEL OF THE SCRIPT RAN"
ADVICE = (
    "it is a script that deploys itself, so loading its hooks would run it again. Move the hook functions "
    "into their own module (e.g. hooks.py) and import them from there, or put the script's top-level code "
    'under `if __name__ == "__main__":`'
)
SCRIPT_TIMEOUT_S = 120

PRE = """
def pre(data):
    return [[value * 2 for value in row] for row in data]
"""

BUILD = """
c = Conduit(name="notebook", flow=(model_type.SKLEARN_CLASSIFIER, "m.pkl", {"pre": pre}), hardware="CPU")
"""


@pytest.fixture()
def folder(tmp_path, iris):
    save_pickle(tmp_path / "m.pkl", LogisticRegression(max_iter=300).fit(*iris))
    return tmp_path


def write_script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def unguarded(folder: Path, action: str) -> Path:
    """The notebook turned script: hooks, Conduit(...) and a call, all at the top level."""
    return write_script(
        folder, "notebook.py", f"print({MARKER!r}, flush=True)\nfrom conduit import Conduit, model_type\n{PRE}{BUILD}{action}\n"
    )


def run_in(folder: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)


def run_script(path: Path) -> subprocess.CompletedProcess:
    return run_in(path.parent, sys.executable, path.name)


def assert_printed_result(done: subprocess.CompletedProcess, folder: Path) -> None:
    """The script's last line is the flow's result: the model on the points the pre hook doubled."""
    model = pickle.loads((folder / "m.pkl").read_bytes())
    printed = json.loads(done.stdout.splitlines()[-1])
    np.testing.assert_allclose(printed, model.predict_proba(np.array(IRIS_POINTS) * 2), rtol=1e-9)


def test_an_unguarded_script_deploying_itself_stops_with_what_to_do(folder):
    script = unguarded(folder, "print(c.deploy())")
    done = run_script(script)
    assert done.returncode != 0 and done.stdout.count(MARKER) == 1, done.stdout + done.stderr
    assert "importing hook file notebook.py ran `Conduit(...)`: " + ADVICE in done.stderr
    assert not (folder / "conduit.yaml").exists()  # refused before saving or building anything


def test_an_unguarded_script_running_in_process_never_runs_twice(folder):
    """run() calls the live functions. Validation may also import the hook file to check it (in a
    subprocess); then the script is refused with the same advice. Either way it runs once."""
    done = run_script(unguarded(folder, "print(c.run(" + json.dumps(IRIS_POINTS) + "))"))
    assert done.stdout.count(MARKER) == 1, done.stdout + done.stderr
    if done.returncode == 0:
        assert_printed_result(done, folder)
    else:
        assert ADVICE in done.stderr


def test_serving_or_conduit_run_refuses_to_import_an_unguarded_script(folder):
    """What the Bento and `conduit run` do: import the hook file; the guard stops it at Conduit(...).
    Loading the manifest may import the file in a child first (validation): then its output is the
    child's, and the message comes as the manifest's problem."""
    unguarded(folder, "c.run([[1.0, 2.0, 3.0, 4.0]])")
    (folder / "conduit.yaml").write_text(
        json.dumps(
            {
                "name": "notebook",
                "hardware": "CPU",
                "flow": [{"model_type": "sklearn_classifier", "path": "m.pkl", "pre": "notebook.py:pre"}],
            }
        )
    )
    conduit_cli = str(Path(sys.executable).with_name("conduit"))
    done = run_in(folder, conduit_cli, "run", "conduit.yaml", "--data", json.dumps(IRIS_POINTS))
    assert done.returncode == 1 and done.stdout.count(MARKER) <= 1, done.stdout + done.stderr
    assert ADVICE in done.stderr


def test_the_guard_names_what_the_file_ran_and_survives_a_swallowing_script(folder):
    write_script(
        folder,
        "swallow.py",
        f"from conduit import Conduit, model_type\n{PRE}try:\n    {BUILD.strip()}\nexcept Exception:\n    pass\n",
    )
    with pytest.raises(HookReentry) as raised:
        load_hook("swallow.py:pre", folder)
    assert str(raised.value) == "hook swallow.py:pre: importing hook file swallow.py ran `Conduit(...)`: " + ADVICE


def test_a_guarded_script_runs_and_imports_cleanly(folder):
    script = write_script(
        folder,
        "guarded.py",
        f"from conduit import Conduit, model_type\n{PRE}\nif __name__ == '__main__':\n"
        f"    print({MARKER!r})\n    {BUILD.strip()}\n    print(c.run({json.dumps(IRIS_POINTS)}))\n",
    )
    done = run_script(script)
    assert done.returncode == 0 and done.stdout.count(MARKER) == 1, done.stderr
    assert_printed_result(done, folder)
    assert import_in_subprocess("guarded.py:pre", folder) is None  # what deploy() checks first
    assert ADVICE in import_in_subprocess("notebook.py:pre", unguarded(folder, "").parent)


def test_hooks_in_their_own_module_let_the_script_stay_unguarded(folder):
    write_script(folder, "hooks.py", PRE)
    script = write_script(
        folder,
        "main.py",
        f"from conduit import Conduit, model_type\nfrom hooks import pre\n{BUILD}"
        f"c.save()\nprint(c.run({json.dumps(IRIS_POINTS)}))\n",
    )
    done = run_script(script)
    assert done.returncode == 0, done.stderr
    assert_printed_result(done, folder)
    assert "pre: hooks.py:pre" in (folder / "conduit.yaml").read_text()
    assert load_hook("hooks.py:pre", folder)([[1.0]]) == [[2.0]]
