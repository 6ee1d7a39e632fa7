import numpy as np
import pytest

from semsearch import Engine, read_documents
from semsearch.documents import Document
from semsearch.errors import InputError, QueryError, StoreError

from conftest import HashingEmbedder

DOCS = [
    Document("g1", "Graph neural networks for molecules", "Message passing over molecular graphs."),
    Document("g2", "Graph attention networks", "Attention over graph neighbourhoods for molecules."),
    Document("t1", "Transformers for translation", "Self attention for machine translation of text."),
    Document("t2", "Pretrained language models", "Language model pretraining on text for translation."),
    Document("v1", "Convolutional image classifiers", "Image classification with deep convolutions."),
]


@pytest.fixture
def engine(hashing_embedder):
    engine = Engine("plumbing", embedder=hashing_embedder)
    engine.build(DOCS)
    return engine


def test_build_reports_what_it_did(hashing_embedder):
    docs = DOCS + [DOCS[0], Document("g1", DOCS[0].title, DOCS[0].abstract + " Revised.")]
    report = Engine("x", embedder=hashing_embedder).build(docs)
    assert (report.read, report.duplicates, report.replaced, report.indexed) == (7, 1, 1, 5)


def test_search_ranks_by_similarity_and_fills_hits(engine):
    hits = engine.search("graph neural networks with message passing for molecules", k=2)
    assert [hit.id for hit in hits] == ["g1", "g2"]
    assert [hit.rank for hit in hits] == [1, 2]
    assert hits[0].score >= hits[1].score
    assert hits[0].title == DOCS[0].title and hits[0].abstract == DOCS[0].abstract


def test_k_larger_than_the_collection_returns_everything(engine):
    assert len(engine.search("anything at all", k=50)) == len(DOCS)


@pytest.mark.parametrize("k", [0, -1, 10_001])
def test_bad_k_is_refused(engine, k):
    with pytest.raises(QueryError, match="k must be a whole number"):
        engine.search("graph", k=k)


def test_empty_query_is_refused(engine):
    with pytest.raises(QueryError, match="query is empty"):
        engine.search("   ")


def test_more_like_this_never_returns_the_paper_itself(engine):
    hits = engine.more_like_this("g1", k=4)
    assert "g1" not in [hit.id for hit in hits]
    assert hits[0].id == "g2"
    assert len(hits) == 4


def test_more_like_this_by_title_ignores_case(engine):
    assert engine.more_like_this("GRAPH NEURAL NETWORKS FOR MOLECULES", k=1)[0].id == "g2"


def test_unknown_paper_suggests_close_titles(engine):
    with pytest.raises(QueryError, match="closest titles: 'Graph attention networks'"):
        engine.more_like_this("Graph atention network")


def test_precomputed_vectors_skip_the_model(tmp_path):
    vectors = np.eye(5, 8, dtype=np.float32) * 3  # not normalised on purpose
    engine = Engine("own-vectors", model="/nonexistent/model")
    report = engine.build(DOCS, vectors=vectors)
    assert report.indexed == 5
    hits = engine.search_vector(np.eye(1, 8, 2, dtype=np.float32)[0], k=1)
    assert hits[0].id == "t1" and hits[0].score == pytest.approx(1.0)
    assert engine.more_like_this("t1", k=1)[0].id != "t1"
    # a query of any length is taken at unit length, so scores stay cosines; zero stays zero
    query = np.array([0, 0, 3, 4, 0, 0, 0, 0], dtype=np.int64)
    [scaled, zero] = engine.search_vectors(np.stack([query, 0 * query]), k=2)
    assert [(h.id, h.score) for h in scaled] == [("t2", pytest.approx(0.8)),
                                                  ("t1", pytest.approx(0.6))]
    assert [h.score for h in zero] == [0.0, 0.0]
    assert list(query) == [0, 0, 3, 4, 0, 0, 0, 0]  # the caller's array is left as it was


def test_vectors_must_match_the_documents():
    with pytest.raises(InputError, match=r"fewer vectors \(4\) than documents"):
        Engine("bad").build(DOCS, vectors=np.ones((4, 384), dtype=np.float32))


def test_vectors_of_another_dimension_than_the_model_are_refused_at_build(index_root):
    with pytest.raises(InputError, match="dimension 8.*all-MiniLM-L6-v2 makes 384"):
        Engine("bad").build(DOCS, vectors=np.ones((5, 8), dtype=np.float32))
    assert not (index_root / "bad").exists()


def test_empty_corpus_writes_no_index(index_root, hashing_embedder):
    with pytest.raises(InputError, match="the input holds no documents"):
        Engine("empty", embedder=hashing_embedder).build([])
    assert not (index_root / "empty").exists()


def test_reopened_index_answers_the_same(engine, hashing_embedder):
    again = Engine.open("plumbing", embedder=hashing_embedder)
    assert [h.id for h in again.search("translation of text", k=3)] == \
           [h.id for h in engine.search("translation of text", k=3)]
    assert again.info().count == 5 and again.info().model == "test-hashing-embedder"


def test_index_refuses_another_model(engine):
    class Other(HashingEmbedder):
        model_name = "other-model"

    with pytest.raises(StoreError, match="built with the model 'test-hashing-embedder'"):
        Engine.open("plumbing", embedder=Other())


def test_query_vector_of_another_dimension_is_refused(engine):
    with pytest.raises(StoreError, match="dimension 64, the query has 3"):
        engine.search_vector(np.ones(3), k=1)


def test_open_without_an_index_fails_at_once():
    with pytest.raises(StoreError, match="no index at"):
        Engine.open("never-built")


def test_rebuild_replaces_contents(engine, hashing_embedder):
    engine.build(DOCS[:2])
    assert engine.info().count == 2
    assert {h.id for h in engine.search("anything", k=10)} == {"g1", "g2"}


# -- with the real bundled model, where meaning matters ---------------------------------------

@pytest.fixture(scope="module")
def sample_engine(tmp_path_factory):
    from semsearch.data import sample_paths

    engine = Engine(tmp_path_factory.mktemp("sample") / "idx")
    report = engine.build(read_documents(sample_paths()))
    assert (report.read, report.duplicates, report.indexed) == (165, 17, 148)
    return engine


def test_real_model_finds_rag_papers(sample_engine):
    hits = sample_engine.search("retrieval augmented generation with knowledge graphs", k=5)
    titles = " ".join(hit.title for hit in hits[:3])
    assert titles.count("Retrieval-Augmented Generation") + titles.count("RAG") >= 2


def test_a_large_collections_query_model_leaves_a_core_to_bm25(sample_engine, monkeypatch):
    """Hybrid's BM25 runs in a thread beside the embedding: past ONE_QUERY_THREAD_FROM papers
    (BM25 the longer half) the model takes one core, below it every core."""
    from semsearch import engine as engine_module

    small = Engine.open(sample_engine.folder.path)
    small.search("graph retrieval")
    assert small.query_embedder.threads == 0
    monkeypatch.setattr(engine_module, "ONE_QUERY_THREAD_FROM", small.info().count)
    large = Engine.open(sample_engine.folder.path)
    large.search("graph retrieval")
    assert large.query_embedder.threads == 1


def test_fp32_and_bf16_queries_rank_alike(sample_engine):
    from semsearch.bf16_queries import bf16_available

    fp32 = sample_engine
    assert fp32.query_runtime == "onnxruntime-fp32"   # the default
    bf16 = Engine.open(sample_engine.folder.path, bf16_queries=True)
    assert bf16.query_runtime == \
        ("openvino-bf16" if bf16_available() else "onnxruntime-fp32")
    for query in ("retrieval augmented generation with knowledge graphs",
                  "vision language models for robot manipulation", "speech recognition"):
        exact = {hit.id: hit.score for hit in fp32.search(query, k=5, mode="dense")}
        queried = {hit.id: hit.score for hit in bf16.search(query, k=5, mode="dense")}
        # The same papers with scores a rounding apart; a near tie (the first query's top two
        # differ by 0.00003) may swap places.
        assert queried.keys() == exact.keys()
        assert all(abs(queried[i] - exact[i]) < 2e-3 for i in exact)


def test_real_model_more_like_mm_embed_is_retrieval_and_embedding(sample_engine):
    hits = sample_engine.more_like_this(
        "MM-Embed: Universal Multimodal Retrieval with Multimodal LLMs", k=5)
    assert all("MM-Embed" not in hit.title for hit in hits)
    topical = [h for h in hits if any(w in h.title.lower() for w in
                                      ("retriev", "embed", "rerank", "representation"))]
    assert len(topical) >= 3


def test_rebuild_changes_settings_without_re_embedding(engine, hashing_embedder):
    from semsearch.engine import LexicalSettings

    before = engine.search("graph neural networks with message passing for molecules", k=3,
                           mode="dense")
    calls = hashing_embedder.calls
    engine.rebuild(lexical=LexicalSettings(k1=2.0, b=0.9))
    assert hashing_embedder.calls == calls
    assert engine.info().lexical["k1"] == 2.0 and engine.info().model == "test-hashing-embedder"
    after = engine.search("graph neural networks with message passing for molecules", k=3,
                          mode="dense")
    assert [(h.id, round(h.score, 5)) for h in after] == [(h.id, round(h.score, 5)) for h in before]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_finds_the_obvious_answer(engine, mode):
    assert engine.search("image classification with deep convolutions", k=2, mode=mode)[0].id == "v1"


def test_unknown_mode_is_refused(engine):
    with pytest.raises(QueryError, match="unknown search mode 'fuzzy'"):
        engine.search("graph", mode="fuzzy")


def test_an_open_engine_keeps_reading_the_generation_it_started_with(engine, hashing_embedder):
    before = engine.search("image classification with deep convolutions", k=1, mode="lexical")
    Engine("plumbing", embedder=hashing_embedder).build(DOCS[:2])  # another writer switches
    assert engine.search("image classification with deep convolutions", k=1,
                         mode="lexical") == before
    assert engine.info().count == 5
    assert Engine.open("plumbing", embedder=hashing_embedder).info().count == 2


class CountingEmbedder(HashingEmbedder):
    """Remembers every text it embedded, to prove what an update did not embed again."""

    def __init__(self):
        super().__init__()
        self.texts = []

    def embed_documents(self, texts):
        self.texts.extend(texts)
        return super().embed_documents(texts)


def many_docs(n=2500):
    return [Document(f"d{i}", f"Paper {i} on topic{i % 41}",
                     f"Words about subject{i % 37}, method{i % 13} and result{i}.")
            for i in range(n)]


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_add_and_remove_update_every_index_type_in_place(kind):
    embedder = CountingEmbedder()
    engine = Engine("grow", embedder=embedder)
    docs = many_docs()
    engine.build(docs, index_type=kind)
    embedder.texts.clear()
    changed = Document("d5", "A changed title", "A new abstract about gravitational lenses.")
    report = engine.add([docs[3], changed, Document("n1", "Fresh", "Quantum error correction.")])
    assert (report.new, report.updated, report.unchanged, report.removed) == (1, 1, 1, 0)
    assert sorted(embedder.texts) == sorted([changed.text, "Fresh Quantum error correction."])
    removed = engine.remove(["d7", "d8"])
    assert (removed.removed, removed.count) == (2, 2499)

    reopened = Engine.open("grow", embedder=HashingEmbedder())
    info = reopened.info()
    assert (info.count, info.index_type) == (2499, kind)
    assert info.changed_since_build == {"added": 2, "removed": 3}
    assert reopened.verify() == []
    for mode in ("dense", "lexical", "hybrid"):
        assert reopened.search(changed.text, k=1, mode=mode)[0].id == "d5"
        found = {hit.id for hit in reopened.search(docs[7].text, k=50, mode=mode)}
        assert not found & {"d7", "d8"}
    assert reopened.get("d5").abstract == changed.abstract
    assert "d8" not in {hit.id for hit in reopened.more_like_this("d9", k=100)}
    with pytest.raises(QueryError):
        reopened.get("d7")


def test_the_same_id_twice_in_one_add_keeps_the_last_version(engine):
    report = engine.add([Document("n1", "First", "Version one."),
                         Document("n1", "Second", "Version two.")])
    assert (report.new, report.updated, report.repeated, report.repeated_ids) == (1, 0, 1, ("n1",))
    assert engine.get("n1").title == "Second" and engine.info().count == len(DOCS) + 1


def test_an_add_that_changes_nothing_writes_nothing(engine):
    before = engine.info()
    report = engine.add(DOCS)
    assert report.unchanged == len(DOCS) and not report.changed
    after = Engine.open("plumbing").info()
    assert (after.generation, after.version) == (before.generation, before.version)


def test_remove_of_an_unknown_id_changes_nothing(engine):
    before = engine.info()
    with pytest.raises(QueryError, match="no paper with id 'nope'.*nothing was removed"):
        engine.remove(["g1", "nope"])
    after = Engine.open("plumbing", embedder=HashingEmbedder()).info()
    assert (after.version, after.count) == (before.version, len(DOCS))


def test_removing_every_paper_is_refused(engine):
    with pytest.raises(InputError, match="would leave the index empty"):
        engine.remove([doc.id for doc in DOCS])
    assert Engine.open("plumbing").info().count == len(DOCS)


def test_adding_with_another_model_is_refused(engine):
    class Other(HashingEmbedder):
        model_name = "another-model"

    with pytest.raises(StoreError, match="built with the model"):
        Engine("plumbing", embedder=Other()).add([Document("n", "New", "Paper.")])


def test_a_reader_opened_before_an_add_keeps_its_view(engine):
    reader = Engine.open("plumbing", embedder=HashingEmbedder())
    assert reader.search("graph", k=1)  # opens the generation it reads
    engine.add([Document("n1", "Graph graph graph", "Graph graph.")])
    assert "n1" not in {hit.id for hit in reader.search("graph", k=10)}
    assert "n1" in {hit.id for hit in Engine.open("plumbing", embedder=HashingEmbedder())
                    .search("graph", k=10)}


def faceted_docs():
    return [Document(f"p{i}", f"Paper {i} about graphs and topic{i % 7}",
                     f"Graph methods, part {i}. A study of subject{i % 5}.",
                     {"year": 2015 + i % 10, "categories": ["cs.LG", f"x.{i % 4}"],
                      "authors": [f"Ada Lovelace{i % 3}", "Alan Turing"]}) for i in range(300)]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filters_keep_only_matching_papers_in_every_mode(mode):
    from semsearch.filters import Filter

    engine = Engine("facets", embedder=HashingEmbedder())
    engine.build(faceted_docs())
    where = Filter.parse("2018..2019", ("x.1",), ("lovelace2",))
    hits = engine.search("graph methods subject3", k=50, mode=mode, where=where)
    expected = {f"p{i}" for i in range(300)
                if 2015 + i % 10 in (2018, 2019) and i % 4 == 1 and i % 3 == 2}
    assert hits and {hit.id for hit in hits} <= expected
    assert len(hits) == min(50, len(expected)) if mode != "lexical" else len(hits) <= 50
    with pytest.raises(QueryError, match="matches --year 1990; the papers' years run from 2015"):
        engine.search("graphs", k=5, where=Filter.parse("1990"))


def test_filter_words_are_parsed_and_checked():
    from semsearch.filters import Filter

    assert Filter.parse("2021..2024").years == (2021, 2024)
    assert Filter.parse("2020..").years == (2020, None)
    assert Filter.parse("..2019").years == (None, 2019)
    assert not Filter.parse(None)
    with pytest.raises(QueryError, match="a year or a range"):
        Filter.parse("last year")
    with pytest.raises(QueryError, match="ends before it starts"):
        Filter.parse("2024..2020")


def test_filters_follow_add_and_remove():
    from semsearch.filters import Filter

    engine = Engine("facets", embedder=HashingEmbedder())
    engine.build(faceted_docs()[:50])
    engine.add([Document("late", "Graphs late", "Graph methods.", {"year": 2031})])
    assert [hit.id for hit in engine.search("graph", where=Filter.parse("2031"))] == ["late"]
    engine.remove(["late"])
    with pytest.raises(QueryError, match="matches --year 2031"):
        engine.search("graph", where=Filter.parse("2031"))


def test_explain_gives_the_closest_sentence_and_matched_words(engine):
    [hit] = engine.search("attention for machine translation", k=1, explain=True)
    assert hit.id == "t1"
    assert hit.explanation.sentence == "Self attention for machine translation of text."
    assert set(hit.explanation.matched_terms) == {"attention", "machine", "translation"}
    assert hit.to_json()["explain"]["matched_terms"]


def test_more_like_these_with_a_negative_moves_away_from_it(engine):
    def scores(negatives, method):
        return {hit.id: hit.score for hit in engine.more_like_these(
            ["g1", "g2"], negatives, k=5, method=method, mode="dense")}

    assert scores(["t1"], "rocchio")["t2"] < scores([], "rocchio")["t2"]  # t2 is like t1
    for method in ("classifier", "rocchio"):
        assert set(scores(["t1"], method)) == {"t2", "v1"}  # none of the given papers
    with pytest.raises(QueryError, match="unknown method"):
        engine.more_like_these(["g1"], method="magic")


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_many_queries_at_once_answer_as_one_at_a_time(engine, mode):
    queries = ["graph neural networks", "machine translation", "image classification"]
    together = engine.search_many(queries, k=3, mode=mode)
    assert [[hit.id for hit in hits] for hits in together] == \
        [[hit.id for hit in engine.search(query, k=3, mode=mode)] for query in queries]
    vectors = engine.embed(queries)
    assert [[hit.id for hit in hits] for hits in engine.search_vectors(vectors, k=2)] == \
        [[hit.id for hit in engine.search_vector(vector, k=2)] for vector in vectors]


def test_a_rebuild_tunes_again_on_the_query_vectors_the_build_was_given():
    """A user with vectors of their own tunes on their own queries; a new recall target
    must not fall back to probes of another kind."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 384)).astype(np.float32)
    queries = rng.normal(size=(400, 384)).astype(np.float32)
    engine = Engine("own")
    engine.build(many_docs(3000), vectors=vectors, index_type="ivf", query_vectors=queries)
    assert engine.info().recall_probe_kind == "given"
    engine.rebuild(target_recall=0.99)
    info = engine.info()
    assert (info.recall_probe_kind, info.recall_probes) == ("given", 200)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_k_results_whenever_the_index_has_them_even_if_the_vector_index_finds_fewer(
        kind, tmp_path, monkeypatch):
    """A graph or the inverted lists visited can hold fewer candidates than a deep k asks for
    (a fault hunt saw 236 rows for -k 500 over 500 papers); such a query is searched exactly."""
    from semsearch.index import vector

    docs = many_docs(600)
    engine = Engine(tmp_path / kind, embedder=HashingEmbedder())
    engine.build(docs, index_type=kind)
    trained = vector.trained_type(kind)
    searched = trained.search

    def finds_a_third(self, queries, k, *args, **kwargs):
        scores, rows = searched(self, queries, k, *args, **kwargs)
        rows, scores = rows.copy(), scores.copy()
        rows[:, k // 3:], scores[:, k // 3:] = -1, -np.inf
        return scores, rows

    monkeypatch.setattr(trained, "search", finds_a_third)
    hits = engine.search("paper topic", k=500, mode="dense")
    assert len(hits) == 500 and len({hit.id for hit in hits}) == 500
    query = engine.embed(["paper topic"])[0]
    best = np.sort(engine.vectors([doc.id for doc in docs]) @ query)[::-1][:500]
    assert [hit.score for hit in hits] == pytest.approx(best.tolist(), abs=1e-5)


# -- an interruption after the commit ----------------------------------------------------------

def test_ctrl_c_after_an_add_committed_says_it_was_saved(tmp_path, monkeypatch):
    from semsearch.errors import InterruptedAfterCommit
    from semsearch.index import segments

    monkeypatch.setattr(segments, "MERGE_AT_SEGMENTS", 1)  # the add's merge comes after it
    engine = Engine(tmp_path / "index", embedder=HashingEmbedder())
    engine.build(many_docs(50))
    engine.add([Document("x1", "First added", "Text.")])

    def interrupt_the_merge(stage, done, total):
        if stage == "merging":
            raise KeyboardInterrupt

    with pytest.raises(InterruptedAfterCommit, match="the write was saved"):
        engine.add([Document("x2", "Second added", "Text.")], interrupt_the_merge)
    assert "x2" in set(Engine.open(tmp_path / "index", embedder=HashingEmbedder()).ids())


def test_ctrl_c_before_the_commit_is_a_plain_interruption(tmp_path):
    class Interrupting(HashingEmbedder):
        def embed_documents(self, texts):
            raise KeyboardInterrupt

    engine = Engine(tmp_path / "index", embedder=HashingEmbedder())
    engine.build(many_docs(50))
    with pytest.raises(KeyboardInterrupt):
        Engine(tmp_path / "index", embedder=Interrupting()).add([Document("x", "New", "Text.")])


def test_the_command_line_says_a_build_was_saved_when_ctrl_c_lands_after_it(tmp_path,
                                                                             monkeypatch):
    from click.testing import CliRunner

    from semsearch.cli import INTERRUPTED, main
    from semsearch.embedding import OnnxEmbedder

    def interrupted(self):  # the model's export, after the build's commit
        raise KeyboardInterrupt

    monkeypatch.setattr(OnnxEmbedder, "prepare", interrupted)
    source = tmp_path / "p.jsonl"
    source.write_text('{"id": "a", "title": "Graphs", "abstract": "About graphs."}\n')
    result = CliRunner().invoke(main, ["index", str(source), "--index", str(tmp_path / "i")])
    assert result.exit_code == INTERRUPTED
    assert "interrupted, but the write was saved" in result.output
    assert "Aborted" not in result.output
    assert Engine.open(tmp_path / "i").info().count == 1


def test_an_engine_shared_by_threads_refreshes_under_searches_without_failing(tmp_path):
    """One thread searches while another writes and refreshes the same engine: every search
    answers (a fault hunt saw "not part of this index state" and "closed database")."""
    import threading

    path = tmp_path / "index"
    shared = Engine(path, embedder=HashingEmbedder())
    shared.build(many_docs(300))
    writer = Engine(path, embedder=HashingEmbedder())
    failures, done = [], threading.Event()

    def search():
        while not done.is_set():
            try:
                for mode in ("hybrid", "dense", "lexical"):
                    assert len(shared.search("subject3 method4", k=5, mode=mode)) == 5
                shared.get("d1")
                list(shared.ids())
            except Exception as error:  # noqa: BLE001 (any failure is the finding)
                failures.append(repr(error))

    searchers = [threading.Thread(target=search) for _ in range(2)]
    for thread in searchers:
        thread.start()
    try:
        for number in range(15):
            writer.add([Document(f"n{number}", f"New paper {number}", "Words subject3.")])
            shared.refresh()
    finally:
        done.set()
        for thread in searchers:
            thread.join(60)
    assert failures == []
    assert shared.info().count == 315


def test_info_tells_when_the_index_was_built_apart_from_its_last_change(tmp_path):
    import time

    engine = Engine(tmp_path / "index", embedder=HashingEmbedder())
    engine.build(many_docs(20))
    built = engine.info().created
    time.sleep(1.1)
    engine.add([Document("late", "A late paper", "Added later.")])
    info = engine.info()
    assert info.created == built and info.updated > built
