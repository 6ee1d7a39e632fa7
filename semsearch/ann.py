"""The vector index: FAISS index types behind one small interface, and the choice between them.

Vectors are L2-normalised, so inner product is cosine similarity. Every vector carries the
int64 row id of its document in the store; search answers with those ids.

Types:
- ``exact``: brute force. Exact, and fast enough for small collections.
- ``hnsw``: an HNSW graph over 8-bit scalar-quantised vectors, about 660 B a vector in memory.
- ``ivf``: inverted lists of 4-bit product-quantised codes, about 115 B a vector in memory,
  for collections too large for the graph's memory.
Both approximate types re-rank their candidates exactly against the float vectors, kept on
disk beside the index and memory-mapped: a query reads only its candidates' rows.

The search parameters of the approximate types (efSearch, nprobe) are tuned at build time to
reach a target recall@10 against exact search, and recorded with the recall measured.
The store decides which folder an index lives in; this module decides the files inside it.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from semsearch.errors import StoreError

if TYPE_CHECKING:
    from semsearch.store import PartFiles

INDEX_FILE = "index.faiss"
FLOATS_FILE = "vectors.npy"
ROWS_FILE = "rows.npy"
#: rows removed from an index type that cannot delete (HNSW): kept in the graph, never returned
DELETED_FILE = "deleted.npy"
#: below this many vectors, exact search costs under about a millisecond and needs no tuning
EXACT_UP_TO = 20_000
DEFAULT_TARGET_RECALL = 0.95
#: a filter matching at most this many rows is answered by exact search over just those rows
#: (a few milliseconds); graph and list searches lose recall when few of the rows they visit pass
EXACT_FILTER_UP_TO = 20_000
#: searches of fewer queries than this are run as single queries: on one thread, and by the
#: scan that suits one query
SINGLE_QUERY_BELOW = 4


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


class VectorIndex(Protocol):
    kind: str
    dimension: int

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each of shape (len(queries), k), best first; id -1 where fewer than k.

        ``allowed``: sorted rows to search among (a filter); the true top k among them.
        """

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of one document, for more-like-this without re-embedding."""

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The stored vectors of several documents, as a matrix in the order given."""

    def search_params(self) -> dict[str, Any]: ...

    def set_search_params(self, params: dict[str, Any]) -> None: ...

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Insert vectors under new rows (higher than any row the index has held), untrained."""

    def remove(self, rows: np.ndarray) -> None:
        """Take rows out: search never returns them again."""

    def highest_row(self) -> int:
        """The highest row the index holds or has held: new rows must come after it."""

    def save(self, folder: Path) -> None: ...


class ExactIndex:
    """Brute-force inner product over every vector."""

    kind = "exact"

    def __init__(self, index) -> None:
        self._index = index
        self.dimension = index.d

    @classmethod
    def build(cls, rows: np.ndarray, vectors: np.ndarray) -> ExactIndex:
        import faiss

        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        index.add_with_ids(vectors, rows)
        return cls(index)

    @classmethod
    def load(cls, files: PartFiles, for_update: bool = False) -> ExactIndex:
        return cls(_read_faiss(files, INDEX_FILE, mmap=not for_update))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        queries = _as_matrix(queries)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        with _threads_for(len(queries)):
            return self._index.search(queries, k, params=params)

    def vector(self, row: int) -> np.ndarray:
        return self._index.reconstruct(int(row))

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        return np.stack([self._index.reconstruct(int(row)) for row in rows])

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(_as_matrix(vectors), np.asarray(rows, dtype=np.int64))

    def remove(self, rows: np.ndarray) -> None:
        _remove_ids(self._index, rows)

    def highest_row(self) -> int:
        import faiss

        ids = faiss.vector_to_array(self._index.id_map)
        return int(ids.max()) if len(ids) else 0

    def search_params(self) -> dict[str, Any]:
        return {}

    def set_search_params(self, params: dict[str, Any]) -> None:
        pass

    def save(self, folder: Path) -> None:
        _write_faiss(self._index, folder / INDEX_FILE)


def _fine_steps(low: int, high: int, ratio: float = 1.12) -> tuple[int, ...]:
    """Whole numbers from ``low`` to ``high``, each about 12% above the last: fine enough that
    tuning stops near its target instead of overshooting it by a coarse step."""
    steps, value = [], float(low)
    while value < high:
        if not steps or round(value) > steps[-1]:
            steps.append(round(value))
        value *= ratio
    return tuple(steps + [high])


class _RerankedIndex:
    """An approximate FAISS index over compressed codes, whose candidates are re-ranked exactly.

    The float vectors live in a file beside the index, memory-mapped: a query reads only its
    candidates' rows, and more-like-this gets each document's exact vector back.
    """

    kind = ""
    #: candidates fetched per result wanted, before exact re-ranking
    RERANK_FACTOR = 2
    #: the search knob tuned to a recall target, its values from cheapest to most thorough,
    #: and the other settings each value is tried with (the fastest that reaches it wins)
    KNOB = ""
    KNOB_VALUES: tuple[int, ...] = ()
    WITH: tuple[dict[str, Any], ...] = ({},)
    #: whether faiss may memory-map the index file without slowing its search down
    MMAP = False

    #: whether the FAISS index can delete vectors; if not, removed rows are kept in it as
    #: tombstones that every search excludes
    CAN_DELETE = True

    def __init__(self, index, floats: np.ndarray, rows: np.ndarray,
                 deleted: np.ndarray | None = None) -> None:
        self._index = index
        self.dimension = index.d
        self.rerank_factor = self.RERANK_FACTOR
        self._set_vectors(floats, rows)
        self._set_deleted(np.zeros(0, np.int64) if deleted is None else deleted)

    def _set_vectors(self, floats: np.ndarray, rows: np.ndarray) -> None:
        # A plain array over the same memory: indexing a np.memmap costs more per call.
        self._floats = floats.view(np.ndarray)
        self._rows = rows
        # Rows of a fresh build run 1..n without gaps, so a row's position is an offset.
        self._first_row = int(rows[0]) if len(rows) and \
            int(rows[-1]) - int(rows[0]) == len(rows) - 1 else None

    def _set_deleted(self, deleted: np.ndarray) -> None:
        import faiss

        self._deleted = np.asarray(deleted, dtype=np.int64)
        self._live = faiss.IDSelectorNot(faiss.IDSelectorBatch(self._deleted)) \
            if len(self._deleted) else None

    @classmethod
    def build(cls, rows: np.ndarray, vectors: np.ndarray) -> _RerankedIndex:
        index = cls._train_and_add(rows, vectors)
        order = np.argsort(rows)
        return cls(index, np.ascontiguousarray(vectors[order]), np.ascontiguousarray(rows[order]))

    @classmethod
    def _train_and_add(cls, rows: np.ndarray, vectors: np.ndarray):
        raise NotImplementedError

    @classmethod
    def load(cls, files: PartFiles, for_update: bool = False) -> _RerankedIndex:
        try:
            floats = np.load(files.path(FLOATS_FILE), mmap_mode="r")
            rows = np.load(files.path(ROWS_FILE))
            deleted = np.load(files.path(DELETED_FILE)) if files.has(DELETED_FILE) else None
        except (OSError, ValueError) as error:
            raise StoreError(f"{files.shown()}: cannot read the stored vectors ({error})") from None
        return cls(_read_faiss(files, INDEX_FILE, mmap=cls.MMAP and not for_update), floats,
                   rows, deleted)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._deleted)

    def _faiss_params(self, selector, selectivity: float = 1.0):
        """FAISS search parameters that only let ``selector``'s ids through, searching harder
        the fewer ids pass (``selectivity``: the share of rows that do)."""
        raise NotImplementedError

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = _as_matrix(queries)
        if allowed is not None and len(allowed) <= EXACT_FILTER_UP_TO:
            return self._search_exactly(queries, k, np.asarray(allowed, dtype=np.int64))
        if allowed is not None:
            import faiss

            # The allowed rows come from the live documents, so no tombstone is among them.
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = self._faiss_params(selector, len(allowed) / max(len(self), 1))
        else:
            params = self._faiss_params(self._live) if self._live is not None else None
        with _threads_for(len(queries)):
            _, candidates = self._index.search(queries, k * self.rerank_factor, params=params)
        return self._reranked(queries, candidates, k)

    def _search_exactly(self, queries: np.ndarray, k: int,
                        allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = self._positions(allowed)
        allowed = allowed[self._rows[positions] == allowed]
        candidates = np.broadcast_to(allowed, (len(queries), len(allowed)))
        return self._reranked(queries, candidates, k)

    def _reranked(self, queries: np.ndarray, candidates: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best k of each query's candidate rows, scored exactly against the floats."""
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for i, found in enumerate(candidates):
            if found[-1] < 0:  # faiss fills the end with -1 when it found fewer
                found = found[found >= 0]
            exact = np.dot(self._floats.take(self._positions(found, held=True), axis=0),
                           queries[i])
            if len(exact) > k:
                best = np.argpartition(exact, len(exact) - k)[-k:]
                best = best[np.argsort(-exact[best], kind="stable")]
            else:
                best = np.argsort(-exact, kind="stable")
            scores[i, :len(best)], ids[i, :len(best)] = exact[best], found[best]
        return scores, ids

    def vector(self, row: int) -> np.ndarray:
        position = int(self._positions(np.array([row]))[0])
        if position >= len(self._rows) or self._rows[position] != row:
            raise KeyError(row)
        return np.array(self._floats[position])

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        return np.array(self._floats[self._positions(np.asarray(rows, dtype=np.int64))])

    def _positions(self, rows: np.ndarray, held: bool = False) -> np.ndarray:
        """Where rows sit in the float vectors; ``held``: rows the index answered with, known
        to be there, so the bounds need no checking."""
        if self._first_row is not None:
            positions = rows - self._first_row
            return positions if held else np.clip(positions, 0, len(self._rows) - 1)
        return np.minimum(np.searchsorted(self._rows, rows), len(self._rows) - 1)

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        vectors = _as_matrix(vectors)
        if len(rows) and int(rows.min()) <= self.highest_row():
            raise ValueError("new rows must be higher than every row the index has held")
        self._index.add_with_ids(vectors, rows)
        order = np.argsort(rows)
        self._set_vectors(np.concatenate([self._floats, vectors[order]]),
                          np.concatenate([self._rows, rows[order]]))

    def remove(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if self.CAN_DELETE:
            _remove_ids(self._index, rows)
        else:
            self._set_deleted(np.union1d(self._deleted, rows))
        keep = ~np.isin(self._rows, rows)
        self._set_vectors(np.ascontiguousarray(self._floats[keep]), self._rows[keep])

    def highest_row(self) -> int:
        return int(max(self._rows.max(initial=0), self._deleted.max(initial=0)))

    def save(self, folder: Path) -> None:
        _write_faiss(self._index, folder / INDEX_FILE)
        np.save(folder / FLOATS_FILE, self._floats)
        np.save(folder / ROWS_FILE, self._rows)
        if len(self._deleted):
            np.save(folder / DELETED_FILE, self._deleted)


class HnswIndex(_RerankedIndex):
    """An HNSW graph (M=32) over 8-bit scalar-quantised vectors: about 660 B a vector in
    memory, sub-millisecond at a million vectors. ``efSearch`` trades speed for recall."""

    kind = "hnsw"
    M = 32
    EF_CONSTRUCTION = 40
    KNOB = "efSearch"
    KNOB_VALUES = _fine_steps(10, 4096)
    WITH = ({"rerank_factor": 2}, {"rerank_factor": 4})
    MMAP = True
    CAN_DELETE = False  # FAISS's HNSW cannot unlink a node from its graph

    @classmethod
    def _train_and_add(cls, rows: np.ndarray, vectors: np.ndarray):
        import faiss

        graph = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, cls.M,
                                  faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = cls.EF_CONSTRUCTION
        graph.train(_training_sample(vectors, 100_000))
        index = faiss.IndexIDMap(graph)
        index.add_with_ids(vectors, rows)
        return index

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


class IvfIndex(_RerankedIndex):
    """Inverted lists of 4-bit product-quantised codes scanned with SIMD (faiss "fast scan"):
    about 113 B a vector in memory. ``nprobe`` (lists visited) trades speed for recall.

    The codes encode each vector's residual from its list's centroid, one 4-bit code per 2
    dimensions. Measured at 1M with SciFact's claims as queries: the lists held the true top 10
    at 0.99 from nprobe 128 on, but 48-byte codes (one per 4 dimensions) ranked them too
    coarsely to reach that without re-ranking 80 candidates a result (0.989 at 1.2 ms); these
    96-byte ones reach 0.991 re-ranking 10 (0.7-1.0 ms p50 in benchmarks/search_path.py).
    """

    kind = "ivf"
    RERANK_FACTOR = 10
    KNOB = "nprobe"
    KNOB_VALUES = _fine_steps(1, 2048)
    WITH = ({"rerank_factor": 10}, {"rerank_factor": 20})

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
    def _train_and_add(cls, rows: np.ndarray, vectors: np.ndarray):
        import faiss

        lists = cls.list_count(len(vectors))
        index = faiss.index_factory(vectors.shape[1],
                                    f"IVF{lists},{cls.codes_for(vectors.shape[1])}",
                                    faiss.METRIC_INNER_PRODUCT)
        index.by_residual = True  # off by default for inner product; far finer codes
        index.train(_training_sample(vectors, lists * 64))
        index.add_with_ids(vectors, rows)
        _centroids_to_fp16(faiss.extract_index_ivf(index))
        return index

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        # For a few queries, faiss's scan without query batching, collecting into a heap
        # (its implementation 10), is faster than the one it picks itself: 0.23 against 0.25 ms
        # at nprobe 32, 0.56 against 0.62 at 128 (1M, each SciFact claim searched once, by one
        # or the other in turns), with the same recall. Batches keep faiss's choice. Either
        # gives right answers, so two threads racing on this setting cost at most speed.
        self._index.implem = 10 if len(_as_matrix(queries)) < SINGLE_QUERY_BELOW else 0
        return super().search(queries, k, allowed)

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
    are out of the CPU caches: half the bytes took 0.1-0.2 ms off a query at 1M (4,000 lists),
    with the same recall at every nprobe measured. Done after the build, whose k-means and
    list assignment run much faster on exact centres (BLAS).
    """
    import faiss

    exact = ivf.quantizer
    fp16 = faiss.IndexScalarQuantizer(ivf.d, faiss.ScalarQuantizer.QT_fp16, ivf.metric_type)
    fp16.add(exact.reconstruct_n(0, ivf.nlist))
    ivf.quantizer = fp16
    fp16.this.disown()  # the index owns its quantiser and deletes it
    exact.this.acquire()  # and the exact one goes when this function returns


def _training_sample(vectors: np.ndarray, size: int) -> np.ndarray:
    if len(vectors) <= size:
        return vectors
    return vectors[np.random.default_rng(0).choice(len(vectors), size, replace=False)]


#: kind -> class; the one place an index type is chosen by name
INDEX_TYPES: dict[str, type] = {"exact": ExactIndex, "hnsw": HnswIndex, "ivf": IvfIndex}


def choose_kind(count: int) -> str:
    """Exact while it is cheap; IVF-PQ above that. (HNSW stays for those who ask for it: on
    short queries, which sit far from every document, it needs a far larger search for the
    same recall; see benchmarks/README.md.)"""
    return "exact" if count <= EXACT_UP_TO else "ivf"


#: probes held out to measure the recall reported, and as many again to tune on
PROBES = 1000
#: tuning aims this far above the target, so that the recall on other queries still reaches it
TUNING_MARGIN = 0.005


def build_index(kind: str, rows: np.ndarray, vectors: np.ndarray,
                target_recall: float = DEFAULT_TARGET_RECALL, probes: np.ndarray | None = None,
                probe_kind: str = "given") -> tuple[VectorIndex, Tuning]:
    """Build an index of ``kind`` (or "auto") and tune its search to ``target_recall``.

    ``probes``: query vectors like the ones users will search with (see ``tune``); without
    them, document vectors moved away from themselves stand in.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if kind == "auto":
        kind = choose_kind(len(rows))
    index = _index_type(kind).build(rows, vectors)
    if not getattr(type(index), "KNOB", ""):
        return index, Tuning()
    if probes is None or len(probes) < 2 * MIN_PROBES:
        probes, probe_kind = query_like(vectors, 2 * PROBES), "documents"
    return index, tune(index, rows, vectors, probes, target_recall, probe_kind)


#: fewer probes than this measure recall too loosely to tune on
MIN_PROBES = 100


def tune(index: VectorIndex, rows: np.ndarray, vectors: np.ndarray, probes: np.ndarray,
         target_recall: float, probe_kind: str = "given") -> Tuning:
    """Set the index's search to the fastest setting whose recall@10 against exact search
    reaches the target on half of ``probes``, and measure the recall on the other half.

    Probes should be what users type: short texts sit farther from every document than
    documents do from each other, and need a more thorough search for the same recall. The
    engine passes fragments of sampled titles embedded as queries, or the query vectors a user
    gives with their own document vectors.
    """
    probes = np.ascontiguousarray(probes, dtype=np.float32)
    tune_on, held_out = probes[0::2], probes[1::2]
    truth = exact_top(vectors, rows, tune_on, 10)
    goal = min(target_recall + TUNING_MARGIN, 1.0)
    candidates = []
    for fixed in type(index).WITH:
        value = _least_value_reaching(index, fixed, tune_on, truth, goal)
        candidates.append({**fixed, type(index).KNOB: value})
    index.set_search_params(min(candidates, key=lambda p: _seconds_per_query(index, p, tune_on)))
    recall = recall_at(index.search(held_out, 10)[1], exact_top(vectors, rows, held_out, 10))
    return Tuning(params=index.search_params(), recall_at_10=round(recall, 4),
                  sample_queries=len(held_out), probes=probe_kind, tuned_on=len(tune_on))


def _least_value_reaching(index, fixed: dict[str, Any], queries: np.ndarray, truth: np.ndarray,
                          goal: float) -> int:
    """The smallest value of the index's knob (with ``fixed`` settings) whose recall reaches
    ``goal``, by bisection (recall grows with it); the largest if none does."""
    values = type(index).KNOB_VALUES
    low, high = 0, len(values) - 1
    while low < high:
        middle = (low + high) // 2
        index.set_search_params({**fixed, type(index).KNOB: values[middle]})
        if recall_at(index.search(queries, 10)[1], truth) >= goal:
            high = middle
        else:
            low = middle + 1
    return values[low]


def _seconds_per_query(index, params: dict[str, Any], queries: np.ndarray) -> float:
    """Median time of a single query with ``params`` (one at a time, as users search)."""
    index.set_search_params(params)
    times = []
    for query in queries[:200]:
        started = time.perf_counter()
        index.search(query, 10)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def query_like(vectors: np.ndarray, count: int, cosine: float = 0.6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = vectors[rng.choice(len(vectors), min(count, len(vectors)), replace=False)]
    spread = vectors[rng.choice(len(vectors), min(len(vectors), 20_000), replace=False)].std(axis=0)
    noise = rng.normal(size=picked.shape).astype(np.float32) * spread
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    along = math.sqrt(1 / cosine**2 - 1)
    queries = picked + along * noise
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids of the exact top k for each query, in blocks so memory stays small."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 100_000):
        block = vectors[start:start + 100_000]
        scores = queries @ block.T
        top = np.argpartition(-scores, min(k, block.shape[0] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        best_rows = np.concatenate([best_rows, rows[start:start + 100_000][top]], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, 1)
        best_rows = np.take_along_axis(best_rows, keep, 1)
    return best_rows


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top k that was found."""
    hits = [len(set(f[f >= 0].tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 1.0


def load_index(kind: str, files: PartFiles, params: dict[str, Any] | None = None,
               for_update: bool = False) -> VectorIndex:
    """An index from its files: memory-mapped for searching, or all in memory to change it."""
    index = _index_type(kind).load(files, for_update=for_update)
    index.set_search_params(params or {})
    return index


def _index_type(kind: str) -> type:
    try:
        return INDEX_TYPES[kind]
    except KeyError:
        raise StoreError(f"unknown index type {kind!r}; known: auto, "
                         f"{', '.join(INDEX_TYPES)}") from None


@contextlib.contextmanager
def _threads_for(query_count: int) -> Iterator[None]:
    """One OpenMP thread for a handful of queries, as long as the search lasts.

    Waking a thread pool costs more than it saves on a single query, and its spinning threads
    slow down the query embedding that runs just before (measured: 9.0 ms against 5.9 ms for
    embed + search on 2 cores).
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


def _remove_ids(index, rows: np.ndarray) -> None:
    import faiss

    index.remove_ids(faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64)))


def _as_matrix(queries: np.ndarray) -> np.ndarray:
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
        raise OSError(f"cannot write {path.name} ({_last_line(error)})") from None


def _last_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else type(error).__name__
