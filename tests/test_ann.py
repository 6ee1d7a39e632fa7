import numpy as np
import pytest

from semsearch import ann
from semsearch.errors import StoreError


def unit_vectors(n, d, seed=0):
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, d)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_exact_search_returns_ids_by_inner_product():
    vectors = unit_vectors(50, 16)
    index = ann.empty_index("exact", 16)
    index.add(np.arange(100, 150), vectors)
    scores, ids = index.search(vectors[7], 3)
    assert ids[0, 0] == 107
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    expected = np.argsort(-(vectors @ vectors[7]))[:3] + 100
    assert list(ids[0]) == list(expected)


def test_vector_of_a_row_is_the_stored_vector():
    vectors = unit_vectors(5, 8)
    index = ann.empty_index("exact", 8)
    index.add(np.array([10, 11, 12, 13, 14]), vectors)
    np.testing.assert_allclose(index.vector(12), vectors[2])


def test_save_and_load_round_trip(tmp_path):
    vectors = unit_vectors(20, 8)
    index = ann.empty_index("exact", 8)
    index.add(np.arange(20), vectors)
    index.save(tmp_path / "v.faiss")
    loaded = ann.load_index("exact", tmp_path / "v.faiss")
    assert len(loaded) == 20 and loaded.dimension == 8
    assert list(loaded.search(vectors[3], 1)[1][0]) == [3]


def test_wrong_dimension_is_refused():
    index = ann.empty_index("exact", 8)
    with pytest.raises(ValueError, match="dimension 8"):
        index.add(np.arange(2), unit_vectors(2, 4))


def test_damaged_file_is_named(tmp_path):
    path = tmp_path / "v.faiss"
    path.write_bytes(b"not a faiss index")
    with pytest.raises(StoreError, match="v.faiss: cannot read the vector index"):
        ann.load_index("exact", path)


def test_unknown_index_type():
    with pytest.raises(StoreError, match="unknown index type 'magic'"):
        ann.empty_index("magic", 8)
