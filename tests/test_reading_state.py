"""The reader's state (semsearch.reading.state): tags with papers for and against them, papers
seen, saved searches; numbered migrations; every write whole or not at all."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from semsearch.errors import QueryError, StoreError
from semsearch.reading.state import AGAINST, FOR, MIGRATIONS, ReaderState

from conftest import worker_process


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


#: a writer to be killed: each step n marks papers pn and qn for "t" in one write (against it
#: when n % 5 == 4), and from step 3 on takes them out again and marks them seen; it prints
#: "done n" after each
TAG_WRITER = """
import sys
from semsearch.reading.state import AGAINST, FOR, ReaderState
state = ReaderState(sys.argv[1])
for n in range(int(sys.argv[2]), 10**6):
    state.mark("t", [(f"p{n}", f"Paper {n}"), (f"q{n}", f"Query {n}")],
               AGAINST if n % 5 == 4 else FOR)
    if n >= 3:
        state.unmark("t", [f"p{n - 3}", f"q{n - 3}"])
        state.see([(f"p{n - 3}", f"Paper {n - 3}"), (f"q{n - 3}", f"Query {n - 3}")])
    # one string: with PYTHONUNBUFFERED each part of a print is a write of its own, and a kill
    # between "done" and the number would leave half a line
    print(f"done {n}", flush=True)
"""


def expected_after(steps: int) -> tuple[dict[str, str], set[str]]:
    """(marks, seen) after steps 0 .. steps - 1 of TAG_WRITER."""
    marks = {f"{kind}{n}": AGAINST if n % 5 == 4 else FOR
             for n in range(max(0, steps - 3), steps) for kind in "pq"}
    return marks, {f"{kind}{n}" for n in range(0, steps - 3) for kind in "pq"}


def state_of(state: ReaderState) -> tuple[dict[str, str], set[str]]:
    return {mark.paper: mark.verdict for mark in state.marks()}, set(state.seen())


def test_a_tag_writer_killed_at_any_moment_leaves_a_whole_state(tmp_path):
    """kill -9 in the middle of tag writes: the store opens, and holds what the steps before
    the kill wrote, at most one step's first write on (each write is its own transaction)."""
    path = tmp_path / "reader.sqlite"
    rng = random.Random(7)
    done = 0
    for trial in range(6):
        worker = worker_process([sys.executable, "-c", TAG_WRITER, str(path), str(done)],
                                stdout=subprocess.PIPE, text=True)
        try:
            last = None
            for _ in range(rng.randrange(1, 25)):
                line = worker.stdout.readline()
                assert line.startswith("done"), line
                last = int(line.split()[1])
            time.sleep(rng.random() * 0.05)
            worker.send_signal(signal.SIGKILL)
            tail = [int(line.split()[1]) for line in worker.stdout.read().splitlines()]
        finally:
            worker.kill()
            worker.wait(timeout=30)
        done = (tail[-1] if tail else last) + 1
        state = ReaderState(path)
        marks, seen = state_of(state)
        legal = [expected_after(done), expected_after(done + 1)]
        # or step `done` half done: its mark written, its unmark or see not yet
        half = dict(expected_after(done)[0])
        half.update({f"{kind}{done}": AGAINST if done % 5 == 4 else FOR for kind in "pq"})
        legal += [(half, expected_after(done)[1]),
                  ({k: v for k, v in half.items() if k[1:] != str(done - 3)},
                   expected_after(done)[1])]
        assert (marks, seen) in legal, f"trial {trial}: after step {done - 1}"
        assert state.tags()[0].papers + state.tags()[0].against == len(marks)
        # the next worker redoes step `done`, whose writes are the same however far it got
