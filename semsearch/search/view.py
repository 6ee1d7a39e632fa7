"""One open index state, as searches see it: the segments, the trained vector index, the
tombstones and the papers of a pinned snapshot, and the two searches over them.

Dense search asks the trained index for the rows it holds and searches every other segment
exactly, then merges: the true top k over all live rows (the trained index's own recall
aside), never a deleted or replaced paper. BM25 scores every segment with the statistics of
all of them (``semsearch.index.lexical``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np

from semsearch.index import lexical as bm25
from semsearch.index import vector
from semsearch.index.segments import Segment, SegmentSet
from semsearch.store.folder import Snapshot, tombstone_mask

#: one ranking: (scores, rows), best first
Ranking = tuple[np.ndarray, np.ndarray]


class IndexView:
    """Searches over one pinned snapshot; its parts are opened when first needed."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.documents = snapshot.documents
        self.manifest = snapshot.manifest
        self.commit = snapshot.commit
        self.tombstones = snapshot.tombstones
        self._segments: SegmentSet | None = None
        self._ann: vector.TrainedIndex | None = None
        self._tokenizer: bm25.Tokenizer | None = None
        self._live: dict[str, np.ndarray | None] = {}
        self._coverage: tuple[SegmentSet, list[Segment]] | None = None
        self._opening = threading.Lock()  # a search may open the vector index in a thread

    # -- parts ------------------------------------------------------------------------------

    @property
    def segments(self) -> SegmentSet:
        if self._segments is None:
            self._segments = SegmentSet([Segment(info, self.snapshot.part(info.name))
                                         for info in self.commit.segments])
        return self._segments

    @property
    def ann(self) -> vector.TrainedIndex | None:
        info = self.commit.ann
        if info is not None and self._ann is None:
            with self._opening:  # read once, whichever thread asks first
                if self._ann is None:
                    ann = vector.trained_type(info.kind).load(self.snapshot.part(info.name))
                    ann.set_search_params(info.tuning.get("params") or {})
                    self._ann = ann
        return self._ann

    @property
    def ann_is_open(self) -> bool:
        """Whether the trained vector index (if any) is read already: searches need it."""
        return self.commit.ann is None or self._ann is not None

    @property
    def covered(self) -> SegmentSet:
        """The segments the trained vector index holds: its candidates' vectors are there."""
        return self._by_coverage()[0]

    @property
    def uncovered(self) -> list[Segment]:
        """The segments no trained vector index holds (``Commit.uncovered``): searched
        exactly."""
        return self._by_coverage()[1]

    def _by_coverage(self) -> tuple[SegmentSet, list[Segment]]:
        if self._coverage is None:
            uncovered = {info.name for info in self.commit.uncovered}
            self._coverage = (SegmentSet([s for s in self.segments if s.name not in uncovered]),
                              [s for s in self.segments if s.name in uncovered])
        return self._coverage

    @property
    def tokenizer(self) -> bm25.Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = bm25.Tokenizer(bm25.settings_from(self.commit.lexical))
        return self._tokenizer

    @property
    def count(self) -> int:
        return self.commit.count

    def vector(self, row: int) -> np.ndarray:
        return self.segments.vector(row)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        return self.segments.vectors(np.asarray(rows, dtype=np.int64))

    def live_vectors(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows, vectors) of every live paper, ``batch`` at a time, segment by segment."""
        for segment in self.segments:
            live = self._live_in(segment)
            rows = segment.rows if live is None else segment.rows[live]
            positions = np.arange(len(segment.rows)) if live is None else np.flatnonzero(live)
            for start in range(0, len(rows), batch):
                yield (rows[start:start + batch],
                       np.asarray(segment.vectors[positions[start:start + batch]],
                                  dtype=np.float32))

    def _live_in(self, segment: Segment) -> np.ndarray | None:
        """Which of a segment's positions are not tombstoned (None: all), worked out once."""
        if segment.name not in self._live:
            dead = tombstone_mask(segment.rows, self.tombstones)
            self._live[segment.name] = None if dead is None else ~dead
        return self._live[segment.name]

    def _keep(self, segment: Segment, allowed: np.ndarray | None) -> np.ndarray | None:
        """Positions of a segment a search may return (None: all)."""
        live = self._live_in(segment)
        if allowed is None:
            return live
        at = np.minimum(np.searchsorted(allowed, segment.rows), len(allowed) - 1) \
            if len(allowed) else np.zeros(len(segment.rows), dtype=np.int64)
        keep = allowed[at] == segment.rows if len(allowed) else np.zeros(len(segment.rows), bool)
        return keep if live is None else keep & live

    # -- searches ---------------------------------------------------------------------------

    def dense(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
              exclude: frozenset[int] = frozenset()) -> list[Ranking]:
        """(scores, rows) of the nearest live vectors to each query, best first, without the
        excluded rows; among ``allowed`` rows (sorted) if given."""
        queries = vector.as_matrix(queries)
        limit = self.count if allowed is None else len(allowed)
        depth = min(k + len(exclude), max(limit, 0))
        if depth <= 0:
            return [(np.zeros(0, np.float32), np.zeros(0, np.int64))] * len(queries)
        if allowed is not None and len(allowed) <= vector.EXACT_FILTER_UP_TO:
            scores, rows = vector.exact_search(self.vectors(allowed), allowed, queries, depth)
        else:
            parts = []
            ann = self.ann
            if ann is not None:
                parts.append(ann.search(queries, depth, self.covered, self.tombstones, allowed))
            for segment in self.uncovered:
                parts.append(vector.exact_search(segment.vectors, segment.rows, queries, depth,
                                                 self._keep(segment, allowed)))
            scores, rows = vector.merged(parts, depth)
            short = (rows >= 0).sum(axis=1) < depth
            if ann is not None and short.any():
                # A graph or the lists visited can hold fewer candidates than asked for (deep k,
                # a narrow filter, many removed papers): those queries are searched exactly,
                # so k results are k whenever the index has them.
                scores[short], rows[short] = self._exact(queries[short], depth, allowed)
        rankings = []
        for found_scores, found_rows in zip(scores, rows):
            keep = found_rows >= 0
            if exclude:
                keep &= ~np.isin(found_rows, list(exclude))
            rankings.append((found_scores[keep][:k], found_rows[keep][:k]))
        return rankings

    def _exact(self, queries: np.ndarray, k: int, allowed: np.ndarray | None):
        """Exact top k over every segment, without what is removed (or not ``allowed``)."""
        return vector.merged([vector.exact_search(segment.vectors, segment.rows, queries, k,
                                                  self._keep(segment, allowed))
                              for segment in self.segments], k)

    def lexical(self, text: str, k: int, allowed: np.ndarray | None = None) -> Ranking:
        """(scores, rows) of the best k live documents by BM25 that share a term with
        ``text``; among ``allowed`` rows (sorted) if given."""
        parts = [bm25.LexicalPart(segment.postings, segment.rows, segment.info.count,
                                     segment.info.tokens, self._keep(segment, allowed))
                 for segment in self.segments]
        return bm25.search(parts, self.tokenizer, text, k)

    def matched_words(self, text: str, row: int) -> list[str]:
        """The words of ``text`` that the paper at ``row`` contains (as BM25 reads them)."""
        segment = self.segments.of_row(row)
        if segment is None:
            return []
        part = bm25.LexicalPart(segment.postings, segment.rows, segment.info.count,
                                   segment.info.tokens, None)
        position = int(segment.positions(np.array([row]))[0])
        return bm25.matched_words(part, self.tokenizer, text, position)

    def close(self) -> None:
        self._ann = None
        self._segments = None
        self.snapshot.close()
