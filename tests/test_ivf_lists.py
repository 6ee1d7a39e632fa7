"""An IVF index opened for search reads its lists as searches probe them, and answers as the
index read whole does; where the lists' places are missing or do not fit, it is read whole."""

import numpy as np
import pytest

from semsearch.index import ivf_lists, vector
from semsearch.store import FolderFiles

from test_vector import ArrayStore, clustered_vectors


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An IVF index of 8,000 vectors, saved; its vectors and rows."""
    folder = tmp_path_factory.mktemp("ivf")
    vectors = clustered_vectors(8000, d=64, clusters=50, seed=5)
    rows = np.arange(10, 8010)
    index = vector.IvfIndex.build(rows, vectors)
    index.set_search_params({"nprobe": 8})
    index.save(folder)
    return folder, rows, vectors


def list_sizes(index) -> np.ndarray:
    import faiss

    lists = faiss.extract_index_ivf(index).invlists
    return np.array([lists.list_size(number) for number in range(lists.nlist)])


def whole(folder):
    return vector.IvfIndex.load(FolderFiles(folder), for_update=True)


def test_a_search_reads_in_only_the_lists_it_probes_and_they_are_the_saved_ones(saved):
    folder, rows, vectors = saved
    stored = ivf_lists.StoredLists.open(FolderFiles(folder), vector.INDEX_FILE)
    index = stored.index_without_lists()
    assert index.ntotal == 8000 and list_sizes(index).sum() == 0
    stored.read_probed(index, vectors[:1], probes=8)
    assert 0 < np.count_nonzero(list_sizes(index)) <= 8 and not stored.complete
    stored.read_all(index)
    assert stored.complete
    expected = whole(folder)._index
    np.testing.assert_array_equal(list_sizes(index), list_sizes(expected))
    queries = clustered_vectors(20, d=64, clusters=50, seed=9)
    for found, wanted in zip(index.search(queries, 20), expected.search(queries, 20)):
        np.testing.assert_array_equal(found, wanted)


@pytest.mark.parametrize("filtered", [False, True])
def test_searches_of_an_index_opened_without_its_lists_answer_as_the_whole_one(saved, filtered):
    folder, rows, vectors = saved
    store = ArrayStore(rows, vectors)
    opened, expected = vector.IvfIndex.load(FolderFiles(folder)), whole(folder)
    for index in (opened, expected):
        index.set_search_params({"nprobe": 8})
    allowed = rows[::7] if filtered else None
    queries = clustered_vectors(30, d=64, clusters=50, seed=11)
    for query in queries[:10]:  # one at a time, then a batch: each reads what it probes
        np.testing.assert_array_equal(
            opened.search(query[None], 10, store, allowed=allowed)[1],
            expected.search(query[None], 10, store, allowed=allowed)[1])
    np.testing.assert_array_equal(opened.search(queries, 10, store, allowed=allowed)[1],
                                  expected.search(queries, 10, store, allowed=allowed)[1])


def test_saving_an_index_opened_without_its_lists_saves_every_list(saved, tmp_path):
    folder, rows, vectors = saved
    opened = vector.IvfIndex.load(FolderFiles(folder))
    opened.search(vectors[:1], 10, ArrayStore(rows, vectors))
    opened.save(tmp_path)
    np.testing.assert_array_equal(list_sizes(whole(tmp_path)._index),
                                  list_sizes(whole(folder)._index))


def test_read_whole_reads_every_list(saved):
    folder, _, _ = saved
    opened = vector.IvfIndex.load(FolderFiles(folder))
    opened.read_whole()
    np.testing.assert_array_equal(list_sizes(opened._index), list_sizes(whole(folder)._index))


@pytest.mark.parametrize("damage", ["missing", "shifted", "another index's", "not an array",
                                    "two lists swapped"])
def test_without_places_that_fit_its_file_the_index_is_read_whole(saved, tmp_path, damage):
    folder, rows, vectors = saved
    for name in (vector.INDEX_FILE, ivf_lists.LISTS_FILE):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    places = np.load(folder / ivf_lists.LISTS_FILE)
    if damage == "missing":
        (tmp_path / ivf_lists.LISTS_FILE).unlink()
    elif damage == "shifted":
        np.save(tmp_path / ivf_lists.LISTS_FILE, places + [[8, 0]])
    elif damage == "another index's":
        np.save(tmp_path / ivf_lists.LISTS_FILE, places[:-1])
    elif damage == "two lists swapped":
        np.save(tmp_path / ivf_lists.LISTS_FILE, places[[1, 0, *range(2, len(places))]])
    else:
        (tmp_path / ivf_lists.LISTS_FILE).write_bytes(b"\x93NUMPY garbage")
    assert ivf_lists.StoredLists.open(FolderFiles(tmp_path), vector.INDEX_FILE) is None
    opened = vector.IvfIndex.load(FolderFiles(tmp_path))
    np.testing.assert_array_equal(list_sizes(opened._index), list_sizes(whole(folder)._index))


def test_after_a_few_searches_every_list_is_read_in(saved):
    folder, rows, vectors = saved
    stored = ivf_lists.StoredLists.open(FolderFiles(folder), vector.INDEX_FILE)
    index = stored.index_without_lists()
    for query in vectors[:ivf_lists.PROBED_SEARCHES]:
        stored.read_probed(index, query[None], probes=1)
    assert not stored.complete
    stored.read_probed(index, vectors[:1], probes=1)
    assert stored.complete


def test_a_list_whose_lengths_are_not_where_its_place_says_is_named_as_damage(saved, tmp_path):
    """Places that fit the file but a list whose stored lengths were overwritten since: the
    search that reads it says the file is damaged, never answers from the wrong bytes."""
    from semsearch.errors import StoreError

    folder, rows, vectors = saved
    for name in (vector.INDEX_FILE, ivf_lists.LISTS_FILE):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    places = np.load(folder / ivf_lists.LISTS_FILE)
    data = bytearray((tmp_path / vector.INDEX_FILE).read_bytes())
    for number, (offset, count) in enumerate(places):
        data[offset:offset + 8] = (int(count) + 1).to_bytes(8, "little")
    (tmp_path / vector.INDEX_FILE).write_bytes(bytes(data))
    opened = vector.IvfIndex.load(FolderFiles(tmp_path))
    with pytest.raises(StoreError, match="index.faiss: list .* is not where lists.npy says"):
        opened.search(vectors[:1], 10, ArrayStore(rows, vectors))


def test_an_empty_index_file_beside_its_places_is_named(saved, tmp_path):
    from semsearch.errors import StoreError

    folder, _, _ = saved
    (tmp_path / ivf_lists.LISTS_FILE).write_bytes((folder / ivf_lists.LISTS_FILE).read_bytes())
    (tmp_path / vector.INDEX_FILE).write_bytes(b"")
    with pytest.raises(StoreError, match="index.faiss: cannot read the vector index"):
        vector.IvfIndex.load(FolderFiles(tmp_path))
