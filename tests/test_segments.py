"""An index of many segments answers as one index would: the true top k among live papers
(never a removed or replaced one), the recall of one merged index, and a reader that opened
before keeps its state while writes and merges go on (index/segments.py, search/view.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from semsearch import Document, Engine
from semsearch.index import segments

from conftest import HashingEmbedder


def paper(number: int, version: int = 0) -> Document:
    return Document(f"p{number}", f"Paper {number} on topic{number % 23} v{version}",
                    f"Words about subject{number % 17}, method{number % 11}, "
                    f"result{number} and field{(number * 7) % 29}.")


def write_rounds(engine: Engine, first: int, rounds: int, rng: random.Random,
                 adds: int = 20, removes: int = 5):
    """Rounds of adds, updates and removes; the live papers' ids after them."""
    live = set(engine.ids())
    next_number = first
    for _ in range(rounds):
        new = [paper(n) for n in range(next_number, next_number + adds)]
        next_number += adds
        updated = [paper(int(i[1:]), version=1) for i in rng.sample(sorted(live), 2)]
        engine.add(new + updated)
        live |= {d.id for d in new}
        gone = rng.sample(sorted(live), removes)
        engine.remove(gone)
        live -= set(gone)
    return live


def kth_scores(engine: Engine, live: list[str], queries: np.ndarray, k: int) -> np.ndarray:
    """Each query's k-th best score over the live papers, by brute force."""
    scores = queries @ engine.vectors(live).T
    return -np.sort(-scores, axis=1)[:, k - 1]


def true_hits(engine: Engine, live: list[str], queries: np.ndarray, k: int) -> list[float]:
    """Per query, the share of its k hits that belong in the true top k (a hit tied with the
    k-th best counts: the test embedder gives many papers equal scores)."""
    kth = kth_scores(engine, live, queries, k)
    found = engine.search_vectors(queries, k=k)
    return [sum(hit.score >= bound - 1e-5 for hit in hits) / k for hits, bound in zip(found, kth)]


@pytest.fixture
def small_merges(monkeypatch):
    monkeypatch.setattr(segments, "MERGE_AT_SEGMENTS", 3)
    monkeypatch.setattr(segments, "FOLD_AT_ROWS", 60)


def test_exact_search_over_many_segments_is_the_true_top_k_of_live_papers(tmp_path,
                                                                         small_merges):
    engine = Engine(tmp_path / "idx", embedder=HashingEmbedder())
    engine.build([paper(n) for n in range(300)], index_type="exact")
    live = sorted(write_rounds(engine, 300, rounds=8, rng=random.Random(1)))
    assert engine.info().segments > 1
    texts = [paper(n).text for n in range(0, 460, 23)]
    queries = HashingEmbedder().embed_queries(texts)
    assert true_hits(engine, live, queries, 10) == [1.0] * len(queries)
    for hits in engine.search_vectors(queries, k=50):
        assert {hit.id for hit in hits} <= set(live)


def recall(engine: Engine, live: list[str], queries: np.ndarray) -> float:
    return float(np.mean(true_hits(engine, live, queries, 10)))


def test_recall_over_segments_is_that_of_one_merged_index(tmp_path, small_merges):
    engine = Engine(tmp_path / "idx", embedder=HashingEmbedder())
    engine.build([paper(n) for n in range(2500)], index_type="ivf")
    live = sorted(write_rounds(engine, 2500, rounds=6, rng=random.Random(2), adds=40,
                               removes=30))
    info = engine.info()
    assert info.segments > 1 and info.segments_in_vector_index >= 2  # some folded in, some not
    queries = HashingEmbedder().embed_queries([paper(n).text + " extra" for n in
                                               range(0, 2740, 27)])
    over_segments = recall(engine, live, queries)
    engine.rebuild()
    assert engine.info().segments == 1
    merged = recall(engine, live, queries)
    assert over_segments == pytest.approx(merged, abs=0.03)
    assert over_segments >= 0.9


def test_a_reader_keeps_its_state_across_five_writes_and_a_merge(tmp_path, monkeypatch):
    monkeypatch.setattr(segments, "MERGE_AT_SEGMENTS", 2)
    path = tmp_path / "idx"
    writer = Engine(path, embedder=HashingEmbedder())
    writer.build([paper(n) for n in range(200)], index_type="exact")
    writer.add([paper(n) for n in range(300, 305)])        # a small segment the reader reads
    reader = Engine.open(path, embedder=HashingEmbedder())
    questions = [paper(n).text for n in (3, 50, 120)]

    def answers(engine):
        return [[(h.id, round(h.score, 5)) for h in engine.search(q, k=5, mode=mode)]
                for q in questions for mode in ("dense", "lexical", "hybrid")]

    before, count = answers(reader), reader.info().count
    segment_files = set(path.rglob("seg-*/vectors.npy"))
    writer.add([paper(n) for n in range(200, 210)])
    writer.remove(["p3", "p50"])
    writer.add([paper(120, version=2)])
    writer.add([paper(n) for n in range(210, 220)])
    writer.remove(["p121"])
    assert writer.info().segments < 4                      # a merge happened
    assert segment_files - set(path.rglob("seg-*/vectors.npy"))  # and deleted the reader's
    assert answers(reader) == before
    assert reader.info().count == count
    assert reader.refresh()
    assert reader.info().count == count + 20 - 3             # p120 was updated, not added
    assert "p3" not in {h.id for h in reader.search(questions[0], k=5)}


def test_segments_whose_row_ranges_interleave_still_find_every_row(tmp_path, small_merges):
    """Merging every segment but the largest can make a segment whose rows run from before
    the largest's first row to after its last: each row is still read from its own segment
    (hybrid search's cosines, `like`'s vectors), not from the one its number falls after."""
    engine = Engine(tmp_path / "idx", embedder=HashingEmbedder())
    engine.build([paper(n) for n in range(10)], index_type="exact")
    for start in range(10, 70, 5):  # small adds: merged into one segment larger than the first
        engine.add([paper(n) for n in range(start, start + 5)])
    for start in range(70, 90, 5):  # then the first one is merged with the newer ones
        engine.add([paper(n) for n in range(start, start + 5)])
    ranges = sorted((s.info.first_row, s.info.last_row) for s in engine._open().segments)
    assert any(a_last > b_first for (_, a_last), (b_first, _) in zip(ranges, ranges[1:])), \
        f"the segments' row ranges do not interleave: {ranges}"
    live = sorted(engine.ids())
    expected = HashingEmbedder().embed_documents([paper(int(i[1:])).text for i in live])
    np.testing.assert_allclose(engine.vectors(live), expected, atol=1e-6)
    for number in (3, 42, 88):
        assert engine.search(paper(number).text, k=5, mode="hybrid")[0].id == f"p{number}"
        assert engine.more_like_this(f"p{number}", k=3)


def test_re_ranking_scores_candidates_in_every_segment_as_numpy_would(tmp_path, small_merges):
    """The exact re-ranking of a trained index's candidates reads each row's vector in place
    from the segment that holds it, gapped (rows removed by a merge) or not, ranges
    interleaved or not: the same top k as scoring copies of the vectors."""
    engine = Engine(tmp_path / "idx", embedder=HashingEmbedder())
    engine.build([paper(n) for n in range(10)], index_type="exact")
    for start in range(10, 90, 5):
        engine.add([paper(n) for n in range(start, start + 5)])
        engine.remove([f"p{start - 3}"])
    store = engine._open().segments
    assert len(store) > 1 and not all(segment.gapless for segment in store)
    held = np.concatenate([segment.rows for segment in store])
    rng = np.random.default_rng(5)
    queries = HashingEmbedder().embed_queries([paper(n).text for n in (4, 33, 71)])
    candidates = np.stack([rng.permutation(held)[:30] for _ in queries])
    candidates[1, 20:] = -1                     # fewer candidates, padded as FAISS pads
    candidates[2, 5:] = -1                      # fewer than k
    scores, rows = store.best_of(queries, candidates, 8)
    for query, found, got_scores, got_rows in zip(queries, candidates, scores, rows):
        found = found[found >= 0]
        exact = store.vectors(found) @ query
        best = np.argsort(-exact, kind="stable")[:8]
        np.testing.assert_allclose(got_scores[:len(best)], exact[best], atol=1e-6)
        # the rows are the candidates those scores belong to (ties may come in either order)
        chosen = got_rows[:len(best)]
        assert len(set(chosen)) == len(best) and set(chosen) <= set(found)
        np.testing.assert_allclose(store.vectors(chosen) @ query, got_scores[:len(best)],
                                   atol=1e-6)
        assert list(got_rows[len(best):]) == [-1] * (8 - len(best))
        assert np.all(np.isneginf(got_scores[len(best):]))


TRUNCATING = """
import os, sys
sys.path.insert(0, {tests!r})
from conftest import HashingEmbedder
from semsearch import Document, Engine, StoreError
path = {path!r}
engine = Engine.open(path, embedder=HashingEmbedder())
for mode in ("dense", "lexical"):
    engine.search("subject3 method4", k=5, mode=mode)        # files mapped, pages read
segment = os.path.join(path, open(os.path.join(path, "CURRENT")).read().strip(), "segments",
                       "seg-000001")
for name in ("vectors.npy", "docs.npy"):
    with open(os.path.join(segment, name), "r+b") as handle:
        handle.truncate(4096)                                  # cut short under the reader
for call in (lambda: engine.search("subject3 method4", k=5, mode="dense"),
             lambda: engine.search("subject3 method4", k=5, mode="lexical"),
             lambda: engine.more_like_these(["d1"], k=3)):
    try:
        call()
        print("answered")
    except StoreError as error:
        print("error:", error)
"""


def test_a_segment_file_cut_short_under_a_running_reader_is_an_error_not_a_crash(tmp_path):
    """A truncated memory-mapped file read past its new end kills the process with SIGBUS and
    no log line; the reader names the file instead."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "index"
    Engine(path, embedder=HashingEmbedder()).build(
        [Document(f"d{i}", f"Paper {i} on topic{i % 41}", f"Words about subject{i % 37}, "
                  f"method{i % 13} and result{i}.") for i in range(3000)])
    done = subprocess.run([sys.executable, "-c", TRUNCATING.format(
        tests=str(Path(__file__).parent), path=str(path))], capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    said = done.stdout.splitlines()
    assert len(said) == 3 and all(line.startswith("error:") for line in said), said
    assert "seg-000001/" in said[0] and "changed under this process" in said[0]
