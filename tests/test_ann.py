import numpy as np
import pytest

from semsearch import ann
from semsearch.store import FolderFiles
from semsearch.errors import StoreError


def clustered_vectors(n, d=128, clusters=40, seed=0):
    """Unit vectors in clusters, as embeddings of papers on related topics are."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    matrix = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, d))
    matrix = matrix.astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_every_type_finds_a_stored_vector_and_answers_with_row_ids(kind):
    vectors = clustered_vectors(3000)
    rows = np.arange(100, 3100)
    index, tuning = ann.build_index(kind, rows, vectors)
    scores, ids = index.search(vectors[7], 3)
    assert ids[0, 0] == 107
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert list(scores[0]) == sorted(scores[0], reverse=True)
    np.testing.assert_allclose(index.vector(107), vectors[7], atol=1e-6)
    assert len(index) == 3000 and index.dimension == 128


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
@pytest.mark.parametrize("target", [0.9, 0.97])
def test_tuning_reaches_the_target_on_queries_it_never_saw_without_overshooting(kind, target):
    vectors = clustered_vectors(5000)
    rows = np.arange(5000)
    probes = ann.query_like(vectors, 2000, seed=3)
    index, tuning = ann.build_index(kind, rows, vectors, target_recall=target, probes=probes)
    assert (tuning.sample_queries, tuning.tuned_on, tuning.probes) == (1000, 1000, "given")
    assert tuning.params == index.search_params()
    # other queries of the same kind: the recall holds, and what the build reported is true
    others = ann.query_like(vectors, 1000, seed=7)
    recall = ann.recall_at(index.search(others, 10)[1], ann.exact_top(vectors, rows, others, 10))
    assert recall >= target - 0.01 and abs(recall - tuning.recall_at_10) <= 0.01
    assert tuning.recall_at_10 <= target + 0.04  # a fine grid (here nprobe 2 to 3 is one step)


def test_without_probes_tuning_uses_document_vectors_moved_away():
    vectors = clustered_vectors(5000)
    _, tuning = ann.build_index("ivf", np.arange(5000), vectors, target_recall=0.9)
    assert tuning.probes == "documents" and tuning.recall_at_10 >= 0.9


def test_asking_ivf_for_more_lists_than_it_has_visits_them_all():
    vectors = clustered_vectors(5000)
    rows = np.arange(5000)
    index, _ = ann.build_index("ivf", rows, vectors)
    lists = index.search_params()["nlist"]
    index.set_search_params({"nprobe": 4 * lists, "rerank_factor": 20})
    assert index.search_params()["nprobe"] == lists
    queries = ann.query_like(vectors, 100, seed=3)
    recall = ann.recall_at(index.search(queries, 10)[1], ann.exact_top(vectors, rows, queries, 10))
    assert recall >= 0.95


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_save_and_load_keep_answers_and_parameters(tmp_path, kind):
    vectors = clustered_vectors(2000)
    index, tuning = ann.build_index(kind, np.arange(2000), vectors)
    index.save(tmp_path)
    loaded = ann.load_index(kind, FolderFiles(tmp_path), tuning.params)
    assert loaded.search_params() == index.search_params()
    np.testing.assert_array_equal(loaded.search(vectors[:5], 10)[1], index.search(vectors[:5], 10)[1])


def test_fewer_vectors_than_k_pads_with_minus_one():
    index, _ = ann.build_index("exact", np.arange(3), clustered_vectors(3))
    scores, ids = index.search(clustered_vectors(1, seed=2), 5)
    assert list(ids[0][3:]) == [-1, -1]


def test_choice_by_size_and_memory_budget():
    assert ann.choose_kind(5_000) == "exact"
    assert ann.choose_kind(100_000) == "ivf"
    assert ann.choose_kind(1_000_000) == "ivf"


def test_pq_codes_fit_the_dimension():
    assert ann.IvfIndex.codes_for(384) == "PQ192x4fs"
    assert ann.IvfIndex.codes_for(32) == "PQ16x4fs"


def test_query_like_vectors_sit_as_far_as_real_queries():
    vectors = clustered_vectors(2000)
    queries = ann.query_like(vectors, 100, cosine=0.6)
    best = (queries @ vectors.T).max(axis=1)
    assert 0.5 < float(np.median(best)) < 0.8
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)


def test_exact_top_matches_a_full_sort():
    vectors = clustered_vectors(500)
    queries = clustered_vectors(4, seed=3)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(ann.exact_top(vectors, np.arange(500), queries, 10), expected)


def test_damaged_file_is_named(tmp_path):
    (tmp_path / "index.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(StoreError, match="index.faiss: cannot read the vector index"):
        ann.load_index("exact", FolderFiles(tmp_path))


def test_unknown_index_type():
    with pytest.raises(StoreError, match="unknown index type 'magic'"):
        ann.build_index("magic", np.arange(2), clustered_vectors(2))


def test_reranked_types_find_rows_with_gaps_too(tmp_path):
    vectors = clustered_vectors(3000)
    rows = np.arange(3000) * 3 + 7  # as after removals: not contiguous
    index, tuning = ann.build_index("ivf", rows, vectors)
    index.save(tmp_path)
    loaded = ann.load_index("ivf", FolderFiles(tmp_path), tuning.params)
    np.testing.assert_allclose(loaded.vector(7 + 3 * 42), vectors[42])
    assert loaded.search(vectors[42], 1)[1][0, 0] == 7 + 3 * 42
    with pytest.raises(KeyError):
        loaded.vector(8)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_every_type_adds_and_removes_without_retraining_and_survives_a_reload(kind, tmp_path):
    vectors = clustered_vectors(3000)
    index, _ = ann.build_index(kind, np.arange(1, 2001), vectors[:2000])
    gone = np.arange(1, 2001, 4)
    index.remove(gone)
    index.add(np.arange(5001, 6001), vectors[2000:])
    index.save(tmp_path)
    reloaded = ann.load_index(kind, FolderFiles(tmp_path), index.search_params())
    assert len(reloaded) == 2000 - len(gone) + 1000
    assert reloaded.highest_row() >= 6000
    found = reloaded.search(vectors[:2000], 10)[1]
    assert not np.isin(found, gone).any()
    # an added vector is found as its own nearest neighbour, and kept exactly
    scores, ids = reloaded.search(vectors[2500], 1)
    assert ids[0, 0] == 5501 and scores[0, 0] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(reloaded.vector(5501), vectors[2500], atol=1e-6)


def test_rows_added_must_come_after_every_row_held():
    vectors = clustered_vectors(3000)
    index, _ = ann.build_index("hnsw", np.arange(1, 3001), vectors)
    index.remove(np.array([3000]))
    with pytest.raises(ValueError, match="higher than every row"):
        index.add(np.array([3000]), vectors[:1])


@pytest.fixture(scope="module")
def built_indexes():
    vectors = clustered_vectors(30_000, d=96, clusters=60, seed=3)
    rows = np.arange(1, 30_001)
    return vectors, rows, {kind: ann.build_index(kind, rows, vectors)[0]
                           for kind in ("exact", "hnsw", "ivf")}


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_one_query_at_a_time_finds_what_a_batch_finds(built_indexes, kind, monkeypatch):
    """Single queries take another path (one thread; for IVF, another faiss scan), filtered
    through the ID selector or not."""
    monkeypatch.setattr(ann, "EXACT_FILTER_UP_TO", 100)
    vectors, rows, indexes = built_indexes
    queries = ann.query_like(vectors, 20, seed=5)
    allowed = np.sort(np.random.default_rng(2).choice(rows, len(rows) // 10, replace=False))
    for only in (None, allowed):
        batch_scores, batch_rows = indexes[kind].search(queries, 10, allowed=only)
        for query, scores, found in zip(queries, batch_scores, batch_rows):
            one_scores, one_rows = indexes[kind].search(query, 10, allowed=only)
            np.testing.assert_array_equal(one_rows[0], found)
            np.testing.assert_allclose(one_scores[0], scores, rtol=1e-6)


@pytest.mark.parametrize("exact_up_to", [100, ann.EXACT_FILTER_UP_TO])
@pytest.mark.parametrize("selectivity", [0.5, 0.1, 0.01, 0.001])
@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_filtered_search_finds_the_true_top_10_among_allowed_rows(
        built_indexes, kind, selectivity, exact_up_to, monkeypatch):
    """recall@10 >= 0.99 against exact search over the allowed rows only. With the exact
    fallback lowered to 100 rows, filters down to 1% go through the FAISS ID selector."""
    monkeypatch.setattr(ann, "EXACT_FILTER_UP_TO", exact_up_to)
    vectors, rows, indexes = built_indexes
    rng = np.random.default_rng(int(selectivity * 1000))
    allowed = np.sort(rng.choice(rows, int(len(rows) * selectivity), replace=False))
    queries = ann.query_like(vectors, 100, seed=11)
    truth = ann.exact_top(vectors[allowed - 1], allowed, queries, 10)
    scores, found = indexes[kind].search(queries, 10, allowed=allowed)
    assert np.isin(found[found >= 0], allowed).all()
    assert ann.recall_at(found, truth) >= 0.99
