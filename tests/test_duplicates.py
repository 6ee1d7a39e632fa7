"""Near-duplicates (semsearch.overview.duplicates): the same paper under two ids found, from
the library and the command, and nothing else; the rule, the threshold and removed papers."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from semsearch import Engine, read_documents
from semsearch.cli import main
from semsearch.errors import QueryError
from semsearch.overview.duplicates import same_paper

from conftest import DATA

CORPUS = DATA / "scifact-first-60.jsonl"


def copies(papers):
    """Three papers again under new ids: the abstract cut to its first half, a few typos,
    the title reworded."""
    cut, typo, reworded = papers[3], papers[10], papers[20]
    sentences = cut.abstract.split(". ")
    return [
        replace(cut, id="copy-cut", abstract=". ".join(sentences[:len(sentences) // 2]) + "."),
        replace(typo, id="copy-typo", title=typo.title.replace("e", "ee", 1),
                abstract=typo.abstract.replace("the ", "teh ", 2)),
        replace(reworded, id="copy-reworded",
                title=" ".join(reversed(reworded.title.split(" ", 2)))),
    ], {("copy-cut", cut.id), ("copy-typo", typo.id), ("copy-reworded", reworded.id)}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    papers = list(read_documents([CORPUS]))
    planted, pairs = copies(papers)
    folder = tmp_path_factory.mktemp("duplicates") / "index"
    engine = Engine(folder)
    engine.build(papers + planted)
    engine.close()
    return folder, pairs


def test_each_copy_is_found_with_its_original_and_nothing_else(indexed):
    folder, pairs = indexed
    with Engine.open(folder) as engine:
        groups = engine.duplicates()
    assert {tuple(reversed(group.ids)) for group in groups} == pairs
    for group in groups:
        assert not group.ids[0].startswith("copy-")  # the paper that came first heads it
        assert 0.8 <= group.similarity <= 1 and len(group.titles) == 2


def test_a_removed_copy_leaves_its_group(indexed, tmp_path):
    import shutil

    folder, _ = indexed
    shutil.copytree(folder, tmp_path / "index")
    with Engine.open(tmp_path / "index") as engine:
        engine.remove(["copy-typo"])
        assert all("copy-typo" not in group.ids for group in engine.duplicates())
        assert len(engine.duplicates()) == 2


def test_a_threshold_outside_a_cosine_is_refused(indexed):
    with Engine.open(indexed[0]) as engine, pytest.raises(QueryError, match="threshold"):
        engine.duplicates(1.5)


def test_the_rule_weighs_titles_and_vectors():
    assert same_paper(0.85, "deep nets", "deep nets")          # an abstract cut short
    assert not same_paper(0.7, "deep nets", "deep nets")       # two papers of one title
    assert same_paper(0.92, "deep neural nets", "deep neural netts")  # a typo
    assert not same_paper(0.92, "deep nets", "protein folding")      # close, unlike titles
    assert same_paper(0.99, "deep nets", "nets that are deep")       # the same abstract
    assert not same_paper(0.92, "", "")                        # no titles: not the same
    assert not same_paper(0.95, "graph networks part 1", "graph networks part 2")  # a series


def test_the_command_prints_a_group_a_line_with_its_ids(indexed):
    folder, pairs = indexed
    runner = CliRunner()
    done = runner.invoke(main, ["duplicates", "--index", str(folder), "--json"])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {tuple(reversed(line["ids"])) for line in lines} == pairs
    shown = runner.invoke(main, ["duplicates", "--index", str(folder)])
    assert shown.exit_code == 0 and "copy-cut" in shown.stdout
    assert shown.stdout.endswith("3 groups of near-duplicates\n")
    refused = runner.invoke(main, ["duplicates", "--index", str(folder), "--threshold", "2"])
    assert refused.exit_code == 2 and "threshold" in refused.output


def test_add_with_near_dedup_folds_copies_into_the_papers_there_before(tmp_path):
    papers = list(read_documents([CORPUS]))
    planted, pairs = copies(papers)
    engine = Engine(tmp_path / "index")
    engine.build(papers)
    report = engine.add(planted + [replace(papers[0], id="really-new", title="A new paper",
                                           abstract="Nothing like the others, on sheep.")],
                        dedup="near")
    assert report.new == 4 and report.folded == 3 and engine.info().count == 61
    for copy_id, original_id in pairs:
        assert engine.get(copy_id).id == original_id  # the copy's id finds the paper kept
        assert copy_id in engine.get(original_id).metadata["aliases"]
    assert engine.duplicates() == [] and engine.verify() == []


def test_index_with_near_dedup_folds_and_says_so(tmp_path):
    papers = list(read_documents([CORPUS]))
    planted, _ = copies(papers)
    source = tmp_path / "papers.jsonl"
    source.write_text("".join(json.dumps({"id": p.id, "title": p.title,
                                          "abstract": p.abstract}) + "\n"
                              for p in papers + planted))
    runner = CliRunner()
    done = runner.invoke(main, ["index", str(source), "--index", str(tmp_path / "index"),
                                "--dedup", "near"])
    assert done.exit_code == 0, done.output
    assert "3 near-duplicates folded into the paper that came first" in done.stdout
    assert Engine.open(tmp_path / "index").info().count == 60
    refused = runner.invoke(main, ["add", str(source), "--index", str(tmp_path / "index"),
                                   "--dedup", "fuzzy"])
    assert refused.exit_code == 2 and "fuzzy" in refused.output
    with pytest.raises(QueryError, match="dedup"):
        Engine.open(tmp_path / "index").add([], dedup="fuzzy")
