"""The trained vector indexes (FAISS), exact search, and tuning to a recall target.

Vectors are L2-normalised, so inner product is cosine similarity. Every vector carries the
int64 row of its document; search answers with rows.

Kinds:
- ``exact``: no trained index: every segment is searched exactly. For small collections.
- ``ivf``: inverted lists of 4-bit product-quantised codes, about 113 B a vector in memory.
- ``hnsw``: an HNSW graph over 8-bit scalar-quantised vectors, about 660 B a vector.
Both trained kinds hold codes only: their candidates are re-ranked exactly against the float
vectors, which the segments keep on disk, memory-mapped (a query reads its candidates' rows).

Their search knob (nprobe, efSearch) is tuned at build time to reach a recall@10 target on
probes like real queries, and recorded with the recall measured on probes held out.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from semsearch import _fs
from semsearch.errors import StoreError
from semsearch.index import ivf_lists

if TYPE_CHECKING:
    from semsearch.store.folder import PartFiles

INDEX_FILE = "index.faiss"
#: up to this many vectors, exact search costs about a millisecond and needs no tuning
EXACT_UP_TO = 20_000
DEFAULT_TARGET_RECALL = 0.95
#: a filter passing at most this many rows is answered by exact search over just those rows
#: (a few milliseconds); graph and list searches lose recall when few rows they visit pass
EXACT_FILTER_UP_TO = 20_000
#: searches of fewer queries than this run as single queries: on one thread, and by the scan
#: that suits one query
SINGLE_QUERY_BELOW = 4
#: vectors added to a trained index at a time (bounds the memory of a large build)
ADD_CHUNK = 100_000
#: kinds there are, "auto" choosing among them by size (see ``choose_kind``)
KINDS = ("exact", "hnsw", "ivf")


class VectorStore(Protocol):
    """Where the float vectors are (the segments), which re-ranking scores in place."""

    def best_of(self, queries: np.ndarray, candidates: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the k of its candidate rows (-1: none) closest to it by their float
        vectors: (scores, rows), best first, -inf and -1 where there are fewer."""
        ...


@dataclass(frozen=True)
class Tuning:
    """What the build measured: the search parameters chosen, and the recall@10 they reach on
    probes held out from the tuning (``sample_queries`` of them, of the kind ``probes``)."""

    params: dict[str, Any] = field(default_factory=dict)
    recall_at_10: float | None = None
    sample_queries: int = 0
    #: what the probes were: "given" (query vectors passed to the build), "titles" (short
    #: fragments of sampled titles, embedded as queries), or "documents" (document vectors
    #: moved away from themselves, where nothing else was there)
    probes: str = ""
    #: probes the parameters were chosen on (others than the ones measured)
    tuned_on: int = 0


def _fine_steps(low: int, high: int, ratio: float = 1.12) -> tuple[int, ...]:
    """Whole numbers from ``low`` to ``high``, each about 12% above the last: fine enough that
    tuning stops near its target instead of overshooting it by a coarse step."""
    steps, value = [], float(low)
    while value < high:
        if not steps or round(value) > steps[-1]:
            steps.append(round(value))
        value *= ratio
    return tuple(steps + [high])


class TrainedIndex:
    """A FAISS index over compressed codes, whose candidates are re-ranked exactly."""

    kind = ""
    #: candidates fetched per result wanted, before exact re-ranking
    RERANK_FACTOR = 2
    #: the knob tuned to a recall target, its values from cheapest to most thorough, and the
    #: other settings each value is tried with (the fastest that reaches the target wins)
    KNOB = ""
    KNOB_VALUES: tuple[int, ...] = ()
    WITH: tuple[dict[str, Any], ...] = ({},)
    #: whether faiss may memory-map the index file without slowing its search down
    MMAP = False
    #: whether the FAISS index can delete vectors (else they stay, hidden by tombstones)
    CAN_DELETE = True

    def __init__(self, index) -> None:
        self._index = index
        self.dimension = index.d
        self.rerank_factor = self.RERANK_FACTOR
        self._excluded: tuple[int, Any] | None = None

    # -- building -----------------------------------------------------------------------

    @classmethod
    def build(cls, rows: np.ndarray, vectors: np.ndarray, progress=None) -> TrainedIndex:
        """Train on a sample, then add every vector a chunk at a time (``vectors`` may be a
        memory map much larger than memory)."""
        if progress:
            progress("training", 0, 1)
        sample = _training_sample(vectors, cls._sample_size(len(vectors)))
        _fs.evict(vectors)
        index = cls._trained(sample, vectors.shape[1], len(vectors))
        del sample
        if progress:
            progress("training", 1, 1)
        for start in range(0, len(vectors), ADD_CHUNK):
            chunk = np.ascontiguousarray(vectors[start:start + ADD_CHUNK], dtype=np.float32)
            index.add_with_ids(chunk, np.ascontiguousarray(rows[start:start + ADD_CHUNK],
                                                           dtype=np.int64))
            _fs.evict(vectors)
            if progress:
                progress("filling", min(start + ADD_CHUNK, len(vectors)), len(vectors))
        return cls(cls._finished(index))

    @classmethod
    def _sample_size(cls, count: int) -> int:
        return count

    @classmethod
    def _trained(cls, sample: np.ndarray, dimension: int, count: int):
        raise NotImplementedError

    @classmethod
    def _finished(cls, index):
        return index

    @classmethod
    def load(cls, files: PartFiles, for_update: bool = False) -> TrainedIndex:
        return cls(_read_faiss(files, INDEX_FILE, mmap=cls.MMAP and not for_update))

    def save(self, folder: Path) -> None:
        _write_faiss(self._index, folder / INDEX_FILE)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors as they are, untrained (folding new segments in)."""
        for start in range(0, len(rows), ADD_CHUNK):
            self._index.add_with_ids(
                np.ascontiguousarray(vectors[start:start + ADD_CHUNK], dtype=np.float32),
                np.ascontiguousarray(rows[start:start + ADD_CHUNK], dtype=np.int64))

    def remove(self, rows: np.ndarray) -> None:
        if self.CAN_DELETE and len(rows):
            import faiss

            self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64)))

    # -- searching ----------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, store: VectorStore,
               excluded: np.ndarray | None = None,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (len(queries), k), best first; row -1 where fewer than k.

        ``excluded``: sorted rows never to return (tombstones); ``allowed``: sorted rows to
        search among (a filter), the true top k among them.
        """
        queries = as_matrix(queries)
        if allowed is not None:
            import faiss

            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = self._faiss_params(selector, len(allowed) / max(len(self), 1))
        else:
            selector = self._excluding(excluded)
            params = self._faiss_params(selector) if selector is not None else None
        with _threads_for(len(queries)):
            self._ready_for(queries, params)
            _, candidates = self._index.search(queries, k * self.rerank_factor, params=params)
        return store.best_of(queries, candidates, k)

    def _ready_for(self, queries: np.ndarray, params) -> None:
        """Set the index up for a search of these queries with these FAISS parameters
        (nothing to do, unless said)."""

    def read_whole(self) -> None:
        """Read in whatever of the index is still on disk only (nothing, unless said): for a
        long-running process, whose searches should not wait for it."""

    def _excluding(self, excluded: np.ndarray | None):
        """A selector that lets every row through but the excluded ones (made once for the
        same tombstones: it hashes them all)."""
        if excluded is None or not len(excluded):
            return None
        if self._excluded is None or self._excluded[0] is not excluded:
            import faiss

            self._excluded = (excluded, faiss.IDSelectorNot(faiss.IDSelectorBatch(excluded)))
        return self._excluded[1]

    def _faiss_params(self, selector, selectivity: float = 1.0):
        """FAISS search parameters that only let ``selector``'s rows through, searching harder
        the fewer rows pass (``selectivity``: the share of rows that do)."""
        raise NotImplementedError

    def search_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_search_params(self, params: dict[str, Any]) -> None:
        raise NotImplementedError


class HnswIndex(TrainedIndex):
    """An HNSW graph (M=32) over 8-bit scalar-quantised vectors: about 660 B a vector in
    memory. ``efSearch`` trades speed for recall."""

    kind = "hnsw"
    M = 32
    EF_CONSTRUCTION = 40
    KNOB = "efSearch"
    KNOB_VALUES = _fine_steps(10, 4096)
    WITH = ({"rerank_factor": 2}, {"rerank_factor": 4})
    MMAP = True
    CAN_DELETE = False  # FAISS's HNSW cannot unlink a node from its graph

    @classmethod
    def _sample_size(cls, count: int) -> int:
        return 100_000

    @classmethod
    def _trained(cls, sample: np.ndarray, dimension: int, count: int):
        import faiss

        graph = faiss.IndexHNSWSQ(dimension, faiss.ScalarQuantizer.QT_8bit, cls.M,
                                  faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = cls.EF_CONSTRUCTION
        graph.train(sample)
        return faiss.IndexIDMap(graph)

    def _graph(self):
        import faiss

        return faiss.downcast_index(self._index.index)

    def search_params(self) -> dict[str, Any]:
        return {"efSearch": int(self._graph().hnsw.efSearch), "M": self.M, "codes": "SQ8",
                "rerank_factor": self.rerank_factor}

    def set_search_params(self, params: dict[str, Any]) -> None:
        if "efSearch" in params:
            self._graph().hnsw.efSearch = int(params["efSearch"])
        if "rerank_factor" in params:
            self.rerank_factor = int(params["rerank_factor"])

    def _faiss_params(self, selector, selectivity: float = 1.0):
        import faiss

        # Given parameters replace the index's own, so efSearch is passed on too. A filter
        # search must find as many passing neighbours as an unfiltered one finds in all.
        ef = self._graph().hnsw.efSearch
        if selectivity < 1.0:
            ef = int(min(4 * ef / selectivity, 4096))
        return faiss.SearchParametersHNSW(sel=selector, efSearch=ef)


class IvfIndex(TrainedIndex):
    """Inverted lists of 4-bit product-quantised codes scanned with SIMD (faiss "fast scan"):
    about 113 B a vector in memory. ``nprobe`` (lists visited) trades speed for recall.

    The codes encode each vector's residual from its list's centroid, one 4-bit code per 2
    dimensions: 48-byte codes (one per 4 dimensions) ranked candidates too coarsely to reach
    0.99 without re-ranking many times more of them (see benchmarks/README.md).
    """

    kind = "ivf"
    RERANK_FACTOR = 10
    KNOB = "nprobe"
    KNOB_VALUES = _fine_steps(1, 2048)
    WITH = ({"rerank_factor": 10}, {"rerank_factor": 20})

    def __init__(self, index, stored: ivf_lists.StoredLists | None = None) -> None:
        super().__init__(index)
        self._implem = index.implem  # faiss's scan, as last set (see ``_ready_for``)
        self._stored = stored  # the lists not all read in yet, if opened without them

    @classmethod
    def load(cls, files: PartFiles, for_update: bool = False) -> TrainedIndex:
        """Opened without its lists, which the first searches read in as they probe them
        (see ``ivf_lists``); whole for an update, or where the lists' places are not known."""
        stored = None if for_update else ivf_lists.StoredLists.open(files, INDEX_FILE)
        if stored is None:
            return super().load(files, for_update)
        try:
            return cls(stored.index_without_lists(), stored)
        except RuntimeError as error:
            raise StoreError(f"{files.shown(INDEX_FILE)}: cannot read the vector index "
                             f"({str(error).strip().splitlines()[0]})") from None

    def save(self, folder: Path) -> None:
        self.read_whole()
        super().save(folder)
        ivf_lists.write_places(self._index, folder / INDEX_FILE, folder / ivf_lists.LISTS_FILE)

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        self.read_whole()
        super().add(rows, vectors)

    def remove(self, rows: np.ndarray) -> None:
        self.read_whole()
        super().remove(rows)

    def read_whole(self) -> None:
        if self._stored is not None:
            self._stored.read_all(self._index)
            self._stored = None

    @staticmethod
    def codes_for(dimension: int) -> str:
        """One 4-bit code per 2 dimensions (192 for MiniLM's 384): 96 bytes a vector."""
        pieces = max(p for p in range(2, dimension // 2 + 1, 2) if dimension % p == 0) \
            if dimension >= 4 else 2
        return f"PQ{pieces}x4fs"

    @staticmethod
    def list_count(n: int) -> int:
        """About 4 * sqrt(n) lists, with enough vectors each to train on."""
        return int(min(max(16, 4 * math.sqrt(n)), n // 39 or 1))

    @classmethod
    def _sample_size(cls, count: int) -> int:
        return cls.list_count(count) * 64

    @classmethod
    def _trained(cls, sample: np.ndarray, dimension: int, count: int):
        import faiss

        lists = cls.list_count(count)
        index = faiss.index_factory(dimension, f"IVF{lists},{cls.codes_for(dimension)}",
                                    faiss.METRIC_INNER_PRODUCT)
        index.by_residual = True  # off by default for inner product; far finer codes
        index.train(sample)
        return index

    @classmethod
    def _finished(cls, index):
        import faiss

        _centroids_to_fp16(faiss.extract_index_ivf(index))
        return index

    def _ready_for(self, queries: np.ndarray, params) -> None:
        if self._stored is not None:
            import faiss

            probes = params.nprobe if isinstance(params, faiss.SearchParametersIVF) \
                else faiss.extract_index_ivf(self._index).nprobe
            self._stored.read_probed(self._index, queries, probes)
            if self._stored.complete:
                self._stored = None
        query_count = len(queries)
        # For a few queries, faiss's scan without query batching, collecting into a heap
        # (its implementation 10), is faster than the one it picks itself (measured in
        # benchmarks/); batches keep faiss's choice. Either gives right answers, so two
        # threads racing on this setting cost at most speed.
        implem = 10 if query_count < SINGLE_QUERY_BELOW else 0
        if implem != self._implem:  # faiss's attributes are slow to set
            self._index.implem = self._implem = implem

    def search_params(self) -> dict[str, Any]:
        import faiss

        ivf = faiss.extract_index_ivf(self._index)
        return {"nprobe": int(ivf.nprobe), "nlist": int(ivf.nlist),
                "codes": f"PQ{self._index.M}x{self._index.nbits}fs",
                "residual": bool(ivf.by_residual), "rerank_factor": self.rerank_factor}

    def _faiss_params(self, selector, selectivity: float = 1.0):
        import faiss

        ivf = faiss.extract_index_ivf(self._index)
        # Visit as many passing vectors as an unfiltered search visits vectors: a filter that
        # lets 1 row in 100 through needs 100 times the lists (codes scan fast; at most all).
        nprobe = min(math.ceil(ivf.nprobe / max(selectivity, 1e-9)), ivf.nlist)
        return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)

    def set_search_params(self, params: dict[str, Any]) -> None:
        import faiss

        if "nprobe" in params:
            # faiss does not clamp: asked for more lists than there are, it returns garbage
            ivf = faiss.extract_index_ivf(self._index)
            ivf.nprobe = min(int(params["nprobe"]), int(ivf.nlist))
        if "rerank_factor" in params:
            self.rerank_factor = int(params["rerank_factor"])


def _centroids_to_fp16(ivf) -> None:
    """Swap an IVF index's exact list centres for the same centres in fp16.

    Every query compares itself with all of them, and right after the query is embedded they
    are out of the CPU caches: half the bytes take time off every query (benchmarks/), with
    the same recall. Done after the build, whose k-means and list assignment run much faster
    on exact centres (BLAS).
    """
    import faiss

    exact = ivf.quantizer
    fp16 = faiss.IndexScalarQuantizer(ivf.d, faiss.ScalarQuantizer.QT_fp16, ivf.metric_type)
    fp16.add(exact.reconstruct_n(0, ivf.nlist))
    ivf.quantizer = fp16
    fp16.this.disown()  # the index owns its quantiser and deletes it
    exact.this.acquire()  # and the exact one goes when this function returns


TRAINED: dict[str, type[TrainedIndex]] = {"hnsw": HnswIndex, "ivf": IvfIndex}


def choose_kind(count: int) -> str:
    """Exact while it is cheap; IVF-PQ above that. (HNSW stays for those who ask for it: on
    short queries, which sit far from every document, it needs a far larger search for the
    same recall; see benchmarks/README.md.)"""
    return "exact" if count <= EXACT_UP_TO else "ivf"


def trained_type(kind: str) -> type[TrainedIndex]:
    try:
        return TRAINED[kind]
    except KeyError:
        raise StoreError(f"unknown vector index type {kind!r}; known: auto, "
                         f"{', '.join(KINDS)}") from None


def check_kind(kind: str) -> None:
    if kind != "auto" and kind not in KINDS:
        raise StoreError(f"unknown vector index type {kind!r}; known: auto, {', '.join(KINDS)}")


# -- exact search and re-ranking ------------------------------------------------------------

def best_by_position(vectors: np.ndarray, queries: np.ndarray, positions: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the k of its ``positions`` in ``vectors`` with the highest inner product,
    best first: (scores, positions), -inf and -1 where there are fewer. Each query's positions
    end at its first negative one (as FAISS pads its answers with -1).

    FAISS's kernel reads each candidate where it lies (a memory-mapped segment), where numpy
    would first copy every candidate out."""
    import faiss

    queries = as_matrix(queries)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # as stored: not copied
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    found = np.empty((len(queries), k), dtype=np.int64)
    faiss.knn_inner_products_by_idx(
        faiss.swig_ptr(queries), faiss.swig_ptr(vectors), faiss.swig_ptr(positions),
        queries.shape[1], len(queries), len(vectors), positions.shape[1], k,
        faiss.swig_ptr(scores), faiss.swig_ptr(found), positions.shape[1])
    scores[found < 0] = -np.inf
    return scores, found


def exact_search(vectors: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int,
                 keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ``vectors`` closest to each query, among ``keep`` (a boolean mask by
    position) if given; (scores, rows) as from an index."""
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    if not len(rows) or (keep is not None and not keep.any()):
        return scores, ids
    if keep is not None and keep.sum() * 4 < len(keep):  # few pass: score just those
        positions = np.flatnonzero(keep)
        vectors, rows, keep = vectors[positions], rows[positions], None
    for start in range(0, len(queries), 256):
        block = np.asarray(vectors, dtype=np.float32) @ queries[start:start + 256].T
        if keep is not None:
            block[~keep] = -np.inf
        for offset in range(block.shape[1]):
            column = block[:, offset]
            best = top(column, k)
            best = best[np.isfinite(column[best])]
            scores[start + offset, :len(best)] = column[best]
            ids[start + offset, :len(best)] = rows[best]
    return scores, ids


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, highest first (ties in position order)."""
    if len(scores) > k:
        best = np.argpartition(scores, len(scores) - k)[-k:]
        return best[np.argsort(-scores[best], kind="stable")]
    return np.argsort(-scores, kind="stable")


def merged(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the best k of several (scores, rows) answers over disjoint rows."""
    if len(parts) == 1:
        return parts[0][0][:, :k], parts[0][1][:, :k]
    scores = np.concatenate([p[0] for p in parts], axis=1)
    rows = np.concatenate([p[1] for p in parts], axis=1)
    scores = np.where(rows >= 0, scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)


# -- tuning ---------------------------------------------------------------------------------

#: probes held out to measure the recall reported, and as many again to tune on
PROBES = 1000
#: fewer probes than this measure recall too loosely to tune on
MIN_PROBES = 100
#: tuning aims this far above the target, so that the recall on other queries still reaches it
TUNING_MARGIN = 0.005


def tune(index: TrainedIndex, store: VectorStore, rows: np.ndarray, vectors: np.ndarray,
         probes: np.ndarray | None, target_recall: float, probe_kind: str = "given",
         progress=None) -> Tuning:
    """Set the index's search to the fastest setting whose recall@10 against exact search
    reaches the target on half of ``probes``, and measure the recall on the other half.

    Probes should be what users type: short texts sit farther from every document than
    documents do from each other, and need a more thorough search for the same recall. The
    engine passes fragments of sampled titles embedded as queries, or the query vectors a user
    gives with their own document vectors; without either, document vectors moved away from
    themselves stand in.
    """
    if probes is None or len(probes) < 2 * MIN_PROBES:
        probes, probe_kind = query_like(vectors, 2 * PROBES), "documents"
    probes = np.ascontiguousarray(probes, dtype=np.float32)
    tune_on, held_out = probes[0::2], probes[1::2]
    searches = len(type(index).WITH) * math.ceil(math.log2(len(type(index).KNOB_VALUES)))
    steps = iter(range(1, searches + 5))
    report = (lambda: progress("tuning", next(steps), searches + 4)) if progress \
        else (lambda: None)
    truth = exact_top(vectors, rows, tune_on, 10)
    report()
    goal = min(target_recall + TUNING_MARGIN, 1.0)
    candidates = []
    for fixed in type(index).WITH:
        value = _least_value_reaching(index, store, fixed, tune_on, truth, goal, vectors,
                                      report)
        candidates.append({**fixed, type(index).KNOB: value})
    index.set_search_params(min(candidates, key=lambda p: _seconds_per_query(index, store, p,
                                                                             tune_on, vectors)))
    report()
    found = _found(index, store, held_out, vectors)
    report()
    recall = recall_at(found, exact_top(vectors, rows, held_out, 10))
    _fs.evict(vectors)
    if progress:
        progress("tuning", searches + 4, searches + 4)
    return Tuning(params=index.search_params(), recall_at_10=round(recall, 4),
                  sample_queries=len(held_out), probes=probe_kind, tuned_on=len(tune_on))


def _least_value_reaching(index, store, fixed: dict[str, Any], queries: np.ndarray,
                          truth: np.ndarray, goal: float, vectors: np.ndarray,
                          step=lambda: None) -> int:
    """The smallest value of the index's knob (with ``fixed`` settings) whose recall reaches
    ``goal``, by bisection (recall grows with it); the largest if none does."""
    values = type(index).KNOB_VALUES
    low, high = 0, len(values) - 1
    while low < high:
        middle = (low + high) // 2
        index.set_search_params({**fixed, type(index).KNOB: values[middle]})
        found = _found(index, store, queries, vectors)
        step()
        if recall_at(found, truth) >= goal:
            high = middle
        else:
            low = middle + 1
    return values[low]


def _found(index, store, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The rows found for each query, searched some at a time, letting go of the vectors'
    pages re-ranking read between them (a thousand probes re-rank a few hundred thousand
    scattered rows: most of a large file's pages)."""
    found = []
    for start in range(0, len(queries), 128):
        found.append(index.search(queries[start:start + 128], 10, store)[1])
        _fs.evict(vectors)
    return np.concatenate(found) if found else np.zeros((0, 10), dtype=np.int64)


def _seconds_per_query(index, store, params: dict[str, Any], queries: np.ndarray,
                       vectors: np.ndarray) -> float:
    """Median time of a single query with ``params`` (one at a time, as users search)."""
    index.set_search_params(params)
    times = []
    for query in queries[:200]:
        started = time.perf_counter()
        index.search(query, 10, store)
        times.append(time.perf_counter() - started)
    _fs.evict(vectors)
    return float(np.median(times))


def query_like(vectors: np.ndarray, count: int, cosine: float = 0.6, seed: int = 0) -> np.ndarray:
    """Document vectors moved away from themselves along noise shaped like the collection, to
    a cosine of about 0.6: stand-ins for queries where no real ones can be had."""
    rng = np.random.default_rng(seed)
    picked = np.asarray(vectors[np.sort(rng.choice(len(vectors), min(count, len(vectors)),
                                                   replace=False))], dtype=np.float32)
    spread_rows = np.sort(rng.choice(len(vectors), min(len(vectors), 20_000), replace=False))
    spread = np.asarray(vectors[spread_rows], dtype=np.float32).std(axis=0)
    noise = rng.normal(size=picked.shape).astype(np.float32) * spread
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    along = math.sqrt(1 / cosine**2 - 1)
    queries = picked + along * noise
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids of the exact top k for each query, in blocks so memory stays small (a block's
    scores for every query, and their sort, are the largest arrays)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    block_rows = max(1000, 4_000_000 // max(len(queries), 1))
    for start in range(0, len(vectors), block_rows):
        block = np.asarray(vectors[start:start + block_rows], dtype=np.float32)
        scores = queries @ block.T
        top_k = np.argpartition(-scores, min(k, block.shape[0] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top_k, 1)], axis=1)
        best_rows = np.concatenate([best_rows, np.asarray(rows[start:start + block_rows])[top_k]],
                                   axis=1)
        del scores, top_k
        _fs.evict(vectors)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, 1)
        best_rows = np.take_along_axis(best_rows, keep, 1)
    return best_rows


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top k that was found."""
    hits = recall_per_query(found, truth)
    return float(np.mean(hits)) if len(hits) else 1.0


def recall_per_query(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each query's share of its true top k that was found (-1 in ``found``: nothing)."""
    return np.array([len(set(f[f >= 0].tolist()) & set(t.tolist())) / len(t)
                     for f, t in zip(found, truth)], dtype=np.float64)


def _training_sample(vectors: np.ndarray, size: int) -> np.ndarray:
    """``size`` vectors picked at random, gathered a block at a time: a sample of a quarter of
    a memory-mapped file touches nearly all of its pages, which are let go as it goes."""
    if len(vectors) <= size:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    picked = np.sort(np.random.default_rng(0).choice(len(vectors), size, replace=False))
    sample = np.empty((size, vectors.shape[1]), dtype=np.float32)
    for start in range(0, size, 32_768):
        sample[start:start + 32_768] = vectors[picked[start:start + 32_768]]
        _fs.evict(vectors)
    return sample


@contextlib.contextmanager
def _threads_for(query_count: int) -> Iterator[None]:
    """One OpenMP thread for a handful of queries, as long as the search lasts.

    Waking a thread pool costs more than it saves on a single query, and its spinning threads
    slow down the query embedding that runs just before.
    """
    if query_count >= SINGLE_QUERY_BELOW:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def normalised(matrix: np.ndarray) -> np.ndarray:
    """A float32 copy of ``matrix`` with each row at unit length (a zero row stays zero), in
    few numpy calls: a query pays for each."""
    matrix = np.array(matrix, dtype=np.float32, order="C")
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
    return np.divide(matrix, norms, out=matrix, where=norms > 0)


def as_matrix(queries: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)


def _read_faiss(files: PartFiles, name: str, mmap: bool):
    """Memory-mapped where that costs nothing: a one-shot query reads only what it touches."""
    import faiss

    try:
        return faiss.read_index(str(files.path(name)), faiss.IO_FLAG_MMAP if mmap else 0)
    except RuntimeError as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise StoreError(f"{files.shown(name)}: cannot read the vector index ({message})") from None


def _write_faiss(index, path: Path) -> None:
    import faiss

    try:
        faiss.write_index(index, str(path))
    except RuntimeError as error:  # faiss reports a failed write (a full disk) this way
        text = str(error).strip()
        raise OSError(f"cannot write {path.name} "
                      f"({text.splitlines()[-1] if text else 'write error'})") from None
