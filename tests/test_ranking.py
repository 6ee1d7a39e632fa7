"""Ranking (semsearch.search.ranking): a filter selects from the ranking of the whole index
and never re-ranks it, in every mode and for `like`; asking for more results never changes
how two papers compare."""

from __future__ import annotations

import pytest

from semsearch import Engine, Filter, read_documents, sample_paths
from semsearch.documents import Document

from conftest import HashingEmbedder

QUERIES = ["retrieval augmented generation with knowledge graphs", "multimodal benchmark",
           "language model reasoning", "speech recognition", "protein structure"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The sample's papers, every third one in cs.CL."""
    papers = [Document(d.id, d.title, d.abstract,
                       {"categories": ["cs.CL" if n % 3 == 0 else "cs.CV"]})
              for n, d in enumerate({d.id: d for d in read_documents(sample_paths())}.values())]
    engine = Engine(tmp_path_factory.mktemp("ranking") / "index", embedder=HashingEmbedder())
    engine.build(papers)
    return engine


def passing(hits, ids: set[str]) -> list[str]:
    return [hit.id for hit in hits if hit.id in ids]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_filtered_search_is_the_unfiltered_ranking_with_the_rest_left_out(engine, mode):
    where = Filter(categories=("cs.CL",))
    in_cl = {hit.id for hit in engine.search_vector(engine.embed(["x"])[0], k=1000, where=where)}
    for query in QUERIES:
        everything = engine.search(query, k=148, mode=mode)
        filtered = engine.search(query, k=5, mode=mode, where=where)
        assert [hit.id for hit in filtered] == passing(everything, in_cl)[:5], query
        unfiltered_score = {hit.id: hit.score for hit in everything}
        assert [hit.score for hit in filtered] == \
            pytest.approx([unfiltered_score[hit.id] for hit in filtered])


def test_like_with_a_filter_selects_from_its_unfiltered_ranking(engine):
    where = Filter(categories=("cs.CL",))
    in_cl = {hit.id for hit in engine.search_vector(engine.embed(["x"])[0], k=1000, where=where)}
    ids = list(engine.ids())
    for liked in (ids[:2], ids[5:8]):
        everything = engine.more_like_these(liked, k=140)
        filtered = engine.more_like_these(liked, k=4, where=where)
        assert [hit.id for hit in filtered] == passing(everything, in_cl)[:4]


@pytest.mark.parametrize("k", [1, 3, 10, 60])
def test_asking_for_more_results_keeps_the_order_of_the_first(engine, k):
    for query in QUERIES:
        assert [hit.id for hit in engine.search(query, k=k)] == \
            [hit.id for hit in engine.search(query, k=148)][:k]


def test_papers_past_both_sides_best_still_come_in_the_dense_order(tmp_path):
    """When fewer than k of the papers either side ranks among its best in the whole index
    pass the filter, the others that pass come after them, scoring 0, in the dense order."""
    papers = [Document(f"p{i}", f"Graph networks paper {i}",
                       f"Graph neural networks and message passing, study {i}.",
                       {"categories": ["cs.LG"]}) for i in range(400)]
    papers += [Document(f"r{i}", f"Rare topic {i}", f"Volcanoes and lava flows {'in depth ' * i}.",
                        {"categories": ["physics.geo-ph"]}) for i in range(4)]
    engine = Engine(tmp_path / "index", embedder=HashingEmbedder())
    engine.build(papers)
    where = Filter(categories=("physics.geo-ph",))
    hits = engine.search("graph neural networks", k=4, where=where)
    dense = engine.search("graph neural networks", k=4, where=where, mode="dense")
    assert [hit.id for hit in hits] == [hit.id for hit in dense]
    assert all(hit.score == 0 for hit in hits)


def test_hybrid_searched_alongside_the_embedding_ranks_as_hybrid_searched_in_turn(
        engine, monkeypatch):
    """Hybrid's lexical half runs in a thread while the query is embedded: the same answers
    as searching the two halves one after the other."""
    from semsearch.search import ranking

    alongside = engine.search_many(QUERIES, k=20)
    monkeypatch.setattr(ranking, "search_ahead", lambda *args: None)
    in_turn = engine.search_many(QUERIES, k=20)
    assert [[(h.id, h.score) for h in hits] for hits in alongside] == \
        [[(h.id, h.score) for h in hits] for hits in in_turn]


def test_an_error_in_the_lexical_thread_is_raised_by_the_search(engine, monkeypatch):
    from semsearch.index import lexical
    from semsearch.errors import StoreError

    def unreadable(*args):
        raise StoreError("postings: cannot read the BM25 postings")
    monkeypatch.setattr(lexical, "search", unreadable)
    with pytest.raises(StoreError, match="cannot read the BM25 postings"):
        engine.search(QUERIES[0])


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_the_vector_index_is_read_once_while_the_first_query_is_embedded(tmp_path, monkeypatch,
                                                                         mode, kind):
    """A first search reads the trained vector index in a thread beside the embedding: once,
    however the two threads meet, and with the answers of an engine that had it open."""
    import time

    from semsearch.index import vector

    papers = list({d.id: d for d in read_documents(sample_paths())}.values())
    Engine(tmp_path / "index", embedder=HashingEmbedder()).build(papers, index_type=kind)
    warm = Engine.open(tmp_path / "index", embedder=HashingEmbedder())
    warm.warm_up()
    expected = [[h.id for h in warm.search(query, k=5, mode=mode)] for query in QUERIES]
    trained = vector.trained_type(kind)
    load, reads = trained.load, []

    def slow_load(part):
        reads.append(part)
        time.sleep(0.2)  # the caller's embedding is done long before: it must wait, not read
        return load(part)
    monkeypatch.setattr(trained, "load", staticmethod(slow_load))
    cold = Engine.open(tmp_path / "index", embedder=HashingEmbedder())
    assert [[h.id for h in cold.search(query, k=5, mode=mode)] for query in QUERIES] == expected
    assert len(reads) == 1


def test_a_first_hybrid_search_ranks_by_bm25_while_the_vector_index_is_read(tmp_path,
                                                                           monkeypatch):
    """Opening the vector index and BM25 run side by side, not one after the other: a
    one-shot search waits for the slower of the two alone."""
    import threading

    from semsearch.index import lexical, vector

    papers = list({d.id: d for d in read_documents(sample_paths())}.values())
    Engine(tmp_path / "index", embedder=HashingEmbedder()).build(papers, index_type="hnsw")
    trained = vector.trained_type("hnsw")
    load, search, ranked = trained.load, lexical.search, threading.Event()
    ranked_while_opening = []

    def ranking(*args, **options):
        found = search(*args, **options)
        ranked.set()
        return found

    def slow_load(part):
        ranked_while_opening.append(ranked.wait(timeout=10))
        return load(part)
    monkeypatch.setattr(lexical, "search", ranking)
    monkeypatch.setattr(trained, "load", staticmethod(slow_load))
    cold = Engine.open(tmp_path / "index", embedder=HashingEmbedder())
    assert len(cold.search(QUERIES[0], k=5)) == 5
    assert ranked_while_opening == [True]
