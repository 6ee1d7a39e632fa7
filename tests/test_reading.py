"""The reader's side of an index (semsearch.reading): tags that outlive every write and
rebuild, recommendations with their reasons, the inbox of new papers (each shown once, copies
folded), exports, and the commands."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Engine
from semsearch.cli import main
from semsearch.documents import Document
from semsearch.errors import QueryError, StoreError, UnknownPaper

from conftest import HashingEmbedder, worker_process, write

TOPICS = {
    "graphs": "graph neural networks message passing nodes edges",
    "proteins": "protein folding structure prediction residues",
    "speech": "speech recognition acoustic audio transcription",
    "vision": "image classification convolutional pixels",
}


def papers(count: int = 30, start: int = 0) -> list[Document]:
    found = []
    for i in range(start, start + count):
        topic = list(TOPICS)[i % len(TOPICS)]
        found.append(Document(f"{topic}-{i}", f"A study of {topic} number {i}",
                              f"We study {TOPICS[topic]} in case {i} with method {i % 7}."))
    return found


@pytest.fixture
def engine(tmp_path) -> Engine:
    engine = Engine(tmp_path / "index", embedder=HashingEmbedder())
    engine.build(papers(40))
    return engine


def ids(hits) -> list[str]:
    return [hit.id for hit in hits]


# -- tags -----------------------------------------------------------------------------------------

def test_papers_are_tagged_by_any_name_and_kept_by_id(engine):
    change = engine.tag(["graphs-0", "A study of graphs number 4"], "Graph work")
    assert change.papers == ("graphs-0", "graphs-4") and change.changed == 2
    engine.tag(["speech-2"], "graph work", against=True)
    [tag] = engine.tags()
    assert (tag.name, tag.papers, tag.against, tag.missing) == ("Graph work", 2, 1, ())
    with pytest.raises(UnknownPaper):
        engine.tag(["no such paper at all"], "graph work")


def test_tags_outlive_a_rebuild_a_reindex_an_add_and_a_remove(engine, tmp_path):
    engine.tag(["graphs-0", "graphs-4"], "graphs")
    engine.build(papers(40))                       # `index` again: a new generation
    engine.rebuild(index_type="exact")             # `reindex`
    engine.add(papers(4, start=40))
    engine.remove(["graphs-4"])
    [tag] = engine.tags()
    assert tag.papers == 2 and tag.missing == ("graphs-4",)  # kept, and said to be gone
    assert {m.paper for m in engine.reader.marks(["graphs"])} == {"graphs-0", "graphs-4"}
    assert engine.recommend(k=3)  # and it still ranks from the paper that is left
    engine.reader.untag(["graphs-4"], "graphs")   # a paper no longer indexed, by its id
    assert engine.tags()[0].missing == ()


def test_tagging_does_not_wait_for_a_process_writing_the_index(engine, tmp_path):
    """The reader's store is its own file: a long `add` in another process (holding the
    index's writer lock) neither blocks a tag nor is blocked by one."""
    holder = worker_process(
        [sys.executable, "-c", "import fcntl, sys, time\n"
         "handle = open(sys.argv[1], 'a'); fcntl.flock(handle, fcntl.LOCK_EX)\n"
         "print('held', flush=True); time.sleep(60)", str(tmp_path / "index" / ".lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match="being written by another process"):
            engine.add(papers(1, start=90))
        assert engine.tag(["graphs-0"], "graphs").changed == 1
        assert engine.tags()[0].papers == 1
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_recommendations_follow_the_tag_and_leave_out_tagged_and_seen_papers(engine):
    engine.tag(["graphs-0", "graphs-4", "graphs-8"], "graphs")
    hits = engine.recommend(k=5)
    assert all(hit.id.startswith("graphs-") for hit in hits[:3])
    assert not {"graphs-0", "graphs-4", "graphs-8"} & set(ids(hits))
    top = hits[0]
    assert top.reason.tag == "graphs" and top.reason.closest_id in {"graphs-0", "graphs-4",
                                                                    "graphs-8"}
    assert 0 < top.score <= 1 and [h.score for h in hits] == sorted((h.score for h in hits),
                                                                   reverse=True)
    engine.reader.see([top.id])
    assert top.id not in ids(engine.recommend(k=5))
    assert top.to_json()["reason"]["closest"]["id"] == top.reason.closest_id


def test_several_tags_compete_and_each_paper_says_its_tag(engine):
    engine.tag(["graphs-0", "graphs-4"], "graphs")
    engine.tag(["speech-2", "speech-6"], "speech")
    hits = engine.recommend(k=12)
    by_tag = {hit.reason.tag for hit in hits}
    assert by_tag == {"graphs", "speech"}
    assert all(hit.id.split("-")[0] == hit.reason.tag for hit in hits[:6])
    only = engine.recommend(["speech"], k=5)
    assert {hit.reason.tag for hit in only} == {"speech"}


def test_recommend_without_tags_says_what_to_do(engine):
    with pytest.raises(QueryError, match="tag some papers first"):
        engine.recommend()


# -- the inbox -----------------------------------------------------------------------------------

def test_the_inbox_ranks_the_new_papers_and_shows_each_once(engine):
    engine.tag(["proteins-1", "proteins-5"], "proteins")
    first = engine.inbox()  # the first reading: the latest write's papers
    assert first.new == 40 - 2 and first.ranked
    time.sleep(1.1)  # arrivals are kept to the second
    engine.add(papers(8, start=100))
    today = engine.inbox(k=3)
    assert today.new == 8 and len(today.hits) == 3
    assert today.hits[0].id.startswith("proteins-") and today.hits[0].reason.tag == "proteins"
    again = engine.inbox(k=10)
    assert again.new == 8 - 3 or again.new == 0
    assert not set(ids(today.hits)) & set(ids(again.hits))   # shown once
    peeked = engine.inbox(since="2000-01-01", k=50, peek=True)
    assert not set(ids(today.hits)) & set(ids(peeked.hits))  # seen papers never come back
    assert set(ids(engine.inbox(since="2000-01-01", k=50, peek=True).hits)) == \
        set(ids(peeked.hits))                                  # a peek marks nothing


def test_an_inbox_with_nothing_new_builds_no_tag_model(engine, monkeypatch):
    from semsearch.reading.reader import Reader

    engine.tag(["proteins-1", "proteins-5"], "proteins")
    engine.inbox(k=50)  # everything read
    built = []
    models = Reader._models
    monkeypatch.setattr(Reader, "_models", lambda self, *a: built.append(1) or models(self, *a))
    assert engine.inbox().hits == [] and built == []  # the morning with nothing new is cheap


def test_an_inbox_of_more_new_papers_than_it_ranks_takes_those_nearest_the_tags(
        engine, tmp_path, monkeypatch):
    """An inbox not read for long (or --since far back) has more new papers than it ranks
    among themselves: it counts them all and ranks those nearest the tags."""
    from semsearch.reading import reader

    monkeypatch.setattr(reader, "RANKED_AT_MOST", 6)
    engine.tag(["proteins-1", "proteins-5"], "proteins")
    inbox = engine.inbox(since="2000-01-01", k=4, peek=True)
    assert inbox.new == 38 and len(inbox.hits) == 4
    assert all(hit.id.startswith("proteins-") for hit in inbox.hits)
    listing = write(tmp_path / "today.jsonl", "\n".join(
        json.dumps({"id": doc.id, "title": doc.title, "abstract": doc.abstract})
        for doc in papers(20, start=300)))
    from semsearch.readers import read_documents

    from_file = engine.inbox(papers=read_documents([listing]), k=3, peek=True)
    assert from_file.new == 20 and all(hit.id.startswith("proteins-") for hit in from_file.hits)


def test_a_copy_of_a_paper_already_seen_or_tagged_is_folded_into_it(engine):
    long_text = " ".join(f"Image classification with convolutional pixels, finding {i}."
                         for i in range(12))
    engine.add([Document("long-original", "Deep pixels for image classification", long_text)])
    engine.tag(["vision-3", "long-original"], "vision")
    engine.inbox(k=100)
    time.sleep(1.1)
    original = next(p for p in papers(40) if p.id == "vision-3")
    engine.add([  # the index keeps them all: their texts differ
        Document("journal-copy", original.title.upper() + "!",  # the same title, new abstract
                 "The journal version of this study, with its abstract rewritten."),
        Document("reworded", "Deep pixels for the image classification",  # nearly the same
                 long_text + " Revised."),
        Document("fresh-1", "Entirely new speech work", "Speech audio acoustic."),
        Document("fresh-2", "Entirely new speech work.", "Speech audio, acoustic, again.")])
    found = engine.inbox(k=10)
    assert found.folded == {"journal-copy": "vision-3", "reworded": "long-original",
                            "fresh-2": "fresh-1"}
    assert ids(found.hits) == ["fresh-1"] and found.hits[0].reason.folded == ("fresh-2",)


def test_papers_from_a_file_are_ranked_without_being_indexed(engine, tmp_path):
    engine.tag(["speech-2", "speech-6"], "speech")
    page = [Document("new-speech", "Speech recognition at scale",
                     "Acoustic audio transcription of speech."),
            Document("new-vision", "Pixels for image classification",
                     "Convolutional image classification.")]
    found = engine.inbox(papers=page, k=2)
    assert ids(found.hits) == ["new-speech", "new-vision"]
    assert not engine.has("new-speech")


# -- moving tags -------------------------------------------------------------------------------

def test_tags_export_and_import_into_a_rebuilt_index(engine, tmp_path):
    engine.tag(["graphs-0", "graphs-4"], "graphs")
    engine.tag(["speech-2"], "graphs", against=True)
    engine.reader.see(["vision-3"])
    engine.reader.save_search("gnn", "graph neural networks", mode="hybrid")
    export = tmp_path / "tags.jsonl"
    assert engine.reader.export(export) == 5
    other = Engine(tmp_path / "other", embedder=HashingEmbedder())
    other.build(papers(40))
    assert other.reader.import_(export) == {"marks": 3, "seen": 1, "searches": 1}
    [tag] = other.tags()
    assert (tag.name, tag.papers, tag.against) == ("graphs", 2, 1)
    write(tmp_path / "bad.jsonl", '{"tag": "x", "paper": "p"}\n{"nothing": 1}\n')
    with pytest.raises(Exception, match="bad.jsonl:2"):
        other.reader.import_(tmp_path / "bad.jsonl")


def test_the_sources_tags_can_seed_the_readers_tags(tmp_path):
    engine = Engine(tmp_path / "index", embedder=HashingEmbedder())
    engine.build([Document("a", "A graph paper", "Graphs.", {"tags": ["must read", "gnn"]}),
                  Document("b", "Another", "Graphs too.", {"tags": ["gnn"]}),
                  Document("c", "Untagged", "Speech.")])
    assert engine.reader.tags_from_source() == {"gnn": 2, "must read": 1}
    assert {(t.name, t.papers) for t in engine.tags()} == {("gnn", 2), ("must read", 1)}


# -- the commands ---------------------------------------------------------------------------------

def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + str(result.exception)
    return result


def test_tag_recommend_inbox_and_tags_from_the_command_line(tmp_path):
    source = write(tmp_path / "p.jsonl", "".join(json.dumps(
        {"id": p.id, "title": p.title, "abstract": p.abstract}) + "\n" for p in papers(40)))
    index = tmp_path / "index"
    run("index", source, "--index", index)
    said = run("tag", "graphs-0", "A study of graphs number 4", "Graph work",
               "--index", index).output
    assert "Graph work: 2 papers marked for it (2 changed); 2 for it, 0 against" in said
    run("tag", "speech-2", "graph work", "--not", "--index", index)
    listing = run("tags", "--index", index).output
    assert "Graph work" in listing and "2        1" in listing
    rows = [json.loads(line) for line in run("recommend", "-k", "3", "--json", "--index",
                                             index).output.splitlines()]
    assert len(rows) == 3 and rows[0]["reason"]["tag"] == "Graph work"
    table = run("recommend", "-k", "2", "--index", index).output
    assert "for \u201cGraph work\u201d, like" in table
    digest = tmp_path / "digest.html"
    shown = run("inbox", "-k", "5", "--output", digest, "--index", index).output
    assert "new since" in shown and "ranked for your tags" in shown
    page = digest.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert "src=" not in page and "stylesheet" not in page  # self-contained
    markdown = tmp_path / "digest.md"
    run("inbox", "--peek", "--since", "2000-01-01", "--output", markdown, "--index", index)
    assert markdown.read_text().startswith("# New papers in index")
    assert run("tags", "graph work", "--index", index).output.count("\n") == 3
    assert "1 paper taken out" in run("untag", "graphs-0", "graph work", "--index",
                                      index).output
    bad = run("tag", "graphs-0", "--index", index, ok=False)
    assert bad.exit_code == 2 and "then the tag" in bad.output


def test_inbox_says_what_to_do_before_there_are_tags(tmp_path):
    source = write(tmp_path / "p.jsonl", "".join(json.dumps(
        {"id": p.id, "title": p.title, "abstract": p.abstract}) + "\n" for p in papers(8)))
    run("index", source, "--index", tmp_path / "i")
    said = run("inbox", "--index", tmp_path / "i").output
    assert "tag papers to have them ranked" in said
