"""An index written by semsearch before segments (format 1, committed under tests/data as that
version wrote it) is refused in one line naming the command that converts it, and that command
converts it without embedding anything: the same papers, the same answers, a clean verify."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from conftest import DATA
from semsearch import Engine, StoreError
from semsearch.cli import main

#: what format 1 answered for "cancer" (k=3) in each mode, recorded when the fixture was
#: written; hybrid since BM25 is scaled with a paper without the query's words as its floor
#: (only two of the 20 papers have the word: the second was scaled to 0 before, and is close to
#: the first now, so the first by meaning leads)
FORMAT_1_ANSWERS = {"dense": ["33370", "5836", "70490"], "hybrid": ["33370", "5836", "70490"],
                    "lexical": ["5836", "33370"]}


@pytest.fixture
def old_index(tmp_path):
    return shutil.copytree(DATA / "format-1-index", tmp_path / "old")


def test_a_format_1_index_is_refused_in_one_line_that_names_the_upgrade(old_index):
    result = CliRunner().invoke(main, ["search", "cancer", "--index", str(old_index)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert f"semsearch upgrade --index {old_index}" in result.output
    with pytest.raises(StoreError, match="semsearch upgrade"):
        Engine.open(old_index)


def test_upgrade_converts_without_embedding_and_answers_as_before(old_index, monkeypatch):
    engine = Engine(old_index)  # Engine.open would refuse it, as above
    assert engine.needs_upgrade()

    def no_model(*args, **kwargs):
        raise AssertionError("the upgrade embedded papers")

    monkeypatch.setattr("semsearch.embedding.OnnxEmbedder.embed_documents", no_model)
    report = engine.upgrade()
    assert report.indexed == 20
    assert not engine.needs_upgrade()
    monkeypatch.undo()
    for mode, answer in FORMAT_1_ANSWERS.items():
        assert [hit.id for hit in engine.search("cancer", k=3, mode=mode)] == answer, mode
    assert engine.verify() == []
    assert engine.info().format_version == 2
    runner = CliRunner()
    assert runner.invoke(main, ["show", "5836", "--index", str(old_index)]).exit_code == 0
