"""spacy: a folder saved with to_disk; entities, cats and tokens as JSON."""
from __future__ import annotations

import pytest

spacy = pytest.importorskip("spacy")

from conduit.errors import InputError, ModelLoadError

from .helpers import load_flow

TEXTS = ["Acme makes great stuff", "I hate it"]


def test_matches_nlp_pipe(spacy_folder):
    result = load_flow(spacy_folder.parent, [("spacy", spacy_folder.name)]).predict(TEXTS)
    nlp = spacy.load(spacy_folder)
    for item, doc in zip(result, nlp.pipe(TEXTS)):
        assert item["tokens"] == [token.text for token in doc]
        assert item["entities"] == [{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char} for e in doc.ents]
        assert item["cats"] == pytest.approx(doc.cats, rel=1e-6)
    assert result[0]["entities"] == [{"text": "Acme", "label": "ORG", "start": 0, "end": 4}]


def test_a_single_text_is_one_data_point(spacy_folder):
    result = load_flow(spacy_folder.parent, [("spacy", spacy_folder.name)]).predict("I hate it")
    assert len(result) == 1 and result[0]["text"] == "I hate it"


def test_numbers_are_refused(spacy_folder):
    flow = load_flow(spacy_folder.parent, [("spacy", spacy_folder.name)])
    with pytest.raises(InputError, match=r"flow\[0\] \(spacy\): expected text: a string or a list of strings, received shape \[1, 2\] of numbers"):
        flow.predict([[1, 2]])


def test_a_file_instead_of_a_folder(tmp_path):
    (tmp_path / "model").write_text("x")
    with pytest.raises(ModelLoadError, match=r"artifact .*model is a file; this model type expects a folder"):
        load_flow(tmp_path, [("spacy", "model")])


def test_a_folder_that_is_not_a_pipeline(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"model is not a spaCy pipeline folder saved with nlp\.to_disk \("):
        load_flow(tmp_path, [("spacy", "model")])
