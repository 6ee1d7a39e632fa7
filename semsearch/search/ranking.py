"""Ranking papers for a query: by meaning (dense), by words (lexical, BM25), or both fused
(hybrid, which scores best on SciFact and Cranfield: see benchmarks/README.md).

A filter selects from a ranking, never re-ranks it: in hybrid search, papers are fused on the
scale of the unfiltered rankings (``fusion``), and the papers that pass are taken in that
order; only when fewer than k of the unfiltered candidates pass are the sides searched again
among the passing papers, for the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from semsearch.errors import QueryError
from semsearch.search.fusion import FusionSettings, fuse, scales_of
from semsearch.search.view import IndexView, Ranking

#: search modes, and the one searches use unless told otherwise
MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"

#: one side of a hybrid ranking: (depth, allowed rows or None) -> (scores, rows), best first
Side = Callable[[int, "np.ndarray | None"], Ranking]


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise QueryError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")


@dataclass(frozen=True)
class Sides:
    """The two searches a hybrid ranking fuses."""

    dense: Side
    lexical: Side


class SearchAhead:
    """What a search can do in threads while the caller embeds its queries: open the trained
    vector index (on a first search) and, for hybrid, rank by BM25 (unfiltered, to the fusion's
    depth), each in a thread of its own, so that a first search does not wait for one and then
    the other. The model's threads release the GIL, and so do FAISS and numpy's long passes,
    so a query waits for the slowest of its parts, not for their sum."""

    def __init__(self, view: IndexView, texts: Sequence[str], depth: int | None):
        view.segments, view.tokenizer  # opened here: the threads must not race the caller to it
        self._rankings: list[Ranking] = []
        self._errors: list[BaseException] = []
        self._threads = []
        if not view.ann_is_open:
            self._start("semsearch-open", lambda: view.ann)
        if depth is not None:
            self._start("semsearch-bm25", lambda: self._rankings.extend(
                view.lexical(text, depth) for text in texts))

    def _start(self, name: str, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # raised again in the caller's thread
                self._errors.append(error)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def lexical(self) -> list[Ranking]:
        """The BM25 rankings, once the threads are done."""
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]
        return self._rankings


def search_ahead(view: IndexView, texts: Sequence[str], k: int, mode: str,
                 fusion: FusionSettings) -> SearchAhead | None:
    """Start what a search can do before its queries are embedded (None: nothing to do)."""
    depth = max(k, fusion.depth) if mode == "hybrid" else None
    if mode == "lexical" or not texts or (depth is None and view.ann_is_open):
        return None
    return SearchAhead(view, texts, depth)


def rank(view: IndexView, texts: Sequence[str], vectors: np.ndarray | None, k: int, mode: str,
         allowed: np.ndarray | None, fusion: FusionSettings,
         ahead: SearchAhead | None = None) -> list[list[tuple[int, float]]]:
    """The top k (row, score) of each query: one side's ranking, or both fused. ``ahead``:
    what was started before the queries were embedded (``search_ahead``)."""
    if mode == "dense":
        return [pairs(found) for found in view.dense(vectors, k, allowed)]
    if mode == "lexical":
        return [pairs(view.lexical(text, k, allowed)) for text in texts]
    depth = max(k, fusion.depth)
    dense = view.dense(vectors, depth)  # every query at once: the vector index batches them
    lexical = ahead.lexical() if ahead is not None else \
        [view.lexical(text, depth) for text in texts]
    answers = []
    for position, text in enumerate(texts):
        query = vectors[position:position + 1]
        sides = Sides(dense=lambda wanted, rows, query=query: view.dense(query, wanted, rows)[0],
                      lexical=lambda wanted, rows, text=text: view.lexical(text, wanted, rows))
        answers.append(hybrid(sides, k, allowed, fusion,
                              reference=(dense[position], lexical[position])))
    return answers


def hybrid(sides: Sides, k: int, allowed: np.ndarray | None, fusion: FusionSettings,
           reference: tuple[Ranking, Ranking] | None = None) -> list[tuple[int, float]]:
    """The top k (row, fused score) among ``allowed`` rows (all if None), ranked as the whole
    index ranks them. ``reference``: the sides' unfiltered rankings, if already searched."""
    depth = max(k, fusion.depth)
    dense, lexical = reference or (sides.dense(depth, None), sides.lexical(depth, None))
    scales = scales_of(dense, lexical, fusion)
    fused = fuse(dense, lexical, fusion, scales)
    if allowed is None:
        return fused[:k]
    rows = np.fromiter((row for row, _ in fused), dtype=np.int64, count=len(fused))
    passing = [pair for pair, passes in zip(fused, np.isin(rows, allowed)) if passes]
    if len(passing) >= k:
        return passing[:k]
    # Fewer than k of the candidates pass: the other passing papers are past both sides' top
    # ``depth`` in the whole index, so they score 0; they follow in the sides' order.
    more = fuse(sides.dense(depth, allowed), sides.lexical(depth, allowed), fusion, scales)
    seen = {row for row, _ in passing}
    return (passing + [pair for pair in more if pair[0] not in seen])[:k]


def pairs(ranking: Ranking) -> list[tuple[int, float]]:
    scores, rows = ranking
    return list(zip(rows.tolist(), scores.tolist()))
