"""The reader's state (semsearch.reading.state): tags with papers for and against them, papers
seen, saved searches; numbered migrations; every write whole or not at all."""

from __future__ import annotations

import sqlite3

import pytest

from semsearch.errors import QueryError, StoreError
from semsearch.reading.state import AGAINST, FOR, MIGRATIONS, ReaderState


@pytest.fixture
def state(tmp_path) -> ReaderState:
    return ReaderState(tmp_path / "reader.sqlite")


def test_reading_before_anything_was_written_makes_no_file(state):
    assert state.tags() == [] and state.marks() == [] and state.seen() == {}
    assert not state.path.exists()


def test_a_tag_holds_papers_for_and_against_it_by_id(state):
    assert state.mark("Graph RAG", [("p1", "First"), ("p2", "Second")]) == 2
    assert state.mark("graph  rag", [("p3", "Third")], AGAINST) == 1
    [summary] = state.tags()
    assert (summary.name, summary.papers, summary.against) == ("Graph RAG", 2, 1)
    assert {(m.paper, m.verdict) for m in state.marks(["GRAPH RAG"])} == \
        {("p1", FOR), ("p2", FOR), ("p3", AGAINST)}


def test_marking_again_changes_the_verdict_and_counts_only_changes(state):
    state.mark("t", [("p1", "A")])
    assert state.mark("t", [("p1", "A")]) == 0
    assert state.mark("t", [("p1", "A")], AGAINST) == 1
    assert [m.verdict for m in state.marks()] == [AGAINST]


def test_untag_and_unknown_tags(state):
    state.mark("t", [("p1", "A"), ("p2", "B")])
    assert state.unmark("T", ["p1", "p9"]) == 1
    assert [m.paper for m in state.marks()] == ["p2"]
    with pytest.raises(QueryError, match="no tag 'other'; the tags are: 't'"):
        state.unmark("other", ["p2"])
    with pytest.raises(QueryError, match="needs letters or digits"):
        state.mark("  ", [("p1", "A")])
    assert state.delete_tag("t") == 1 and state.tags() == []


def test_seen_papers_and_saved_searches(state):
    state.see([("p1", "a title"), ("p2", "another")])
    state.see([("p1", "a title")])
    assert state.seen() == {"p1": "a title", "p2": "another"}
    state.save_search("rag", "retrieval augmented generation", "{}")
    assert [s.query for s in state.searches()] == ["retrieval augmented generation"]
    assert state.forget_search("rag") and state.searches() == []


def test_the_store_migrates_step_by_step_keeping_what_it_held(tmp_path):
    path = tmp_path / "reader.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO tags VALUES ('old', 'Old', '2026-01-01', '2026-01-01')")
    db.execute("INSERT INTO marks VALUES ('old', 'p1', 'for', 'A paper', '2026-01-01')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    state = ReaderState(path)
    assert state.version == len(MIGRATIONS)
    assert [m.paper for m in state.marks(["old"])] == ["p1"]
    state.save_search("s", "q", "{}")  # a table of a later migration
    assert [s.name for s in state.searches()] == ["s"]


def test_a_store_from_a_newer_semsearch_is_refused_in_one_line(tmp_path):
    path = tmp_path / "reader.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer semsearch"):
        ReaderState(path).tags()


def test_a_write_that_fails_half_way_changes_nothing(state, monkeypatch):
    state.mark("t", [("p1", "A")])

    def papers():
        yield ("p2", "B")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        state.mark("t", papers())
    assert [m.paper for m in state.marks()] == ["p1"]


def test_a_damaged_file_is_one_line(tmp_path):
    path = tmp_path / "reader.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="reader's tags"):
        ReaderState(path).tags()
