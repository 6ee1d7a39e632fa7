"""Fusing rankings from dense and lexical search into one.

Two ways, both measured on SciFact train (benchmarks/results/quality.json): reciprocal rank
fusion, which needs only ranks, and a weighted sum of normalised scores.

A paper's fused score depends on the query and the paper alone: each side's scores are scaled
by that side's top ``depth`` over the whole collection (its best scores 1, its ``depth``-th 0,
anything lower 0, as if absent), and reciprocal rank fusion counts ranks within that top
``depth``. So asking for more results, or filtering, never changes how two papers compare:
a filter selects from the ranking, it does not re-rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: one ranking: (scores, rows), best first
Ranking = tuple[np.ndarray, np.ndarray]

#: what a hybrid score is, in a line (the CLI and the API describe it so)
HYBRID_SCALE = ("0 to 1: the mean of the dense and BM25 scores, each scaled so that the "
                "query's best paper in the whole index is 1 and its 200th (for BM25, at "
                "most a paper without the query's words) is 0")


@dataclass(frozen=True)
class FusionSettings:
    """How hybrid search fuses; defaults tuned on SciFact train (see benchmarks/)."""

    method: str = "score"        # "score" (normalised score sum) or "rrf"
    rrf_k: int = 60              # rank constant of reciprocal rank fusion
    dense_weight: float = 0.5    # share of the dense side, in score fusion
    depth: int = 200             # candidates taken from each side


@dataclass(frozen=True)
class Scale:
    """How one side's scores become fusion scores: ``best`` maps to 1, ``floor`` (the score
    at the side's ``depth``-th place in the whole index) to 0."""

    best: float
    floor: float

    @classmethod
    def of(cls, ranking: Ranking, depth: int, absent: float | None = None) -> Scale | None:
        """The scale of a side's unfiltered ranking (best first); None if it found nothing.
        ``absent`` is the score of a paper the side does not list at all (BM25's 0 for a
        paper without the query's words): the floor when the side lists fewer than
        ``depth``."""
        scores = ranking[0][:depth]
        if not len(scores):
            return None
        floor = absent if absent is not None and len(scores) < depth else float(scores[-1])
        return cls(float(scores[0]), min(floor, float(scores[-1])))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        span = self.best - self.floor or 1.0
        return np.clip((np.asarray(scores, dtype=np.float64) - self.floor) / span, 0.0, 1.0)


def fuse(dense: Ranking, lexical: Ranking, settings: FusionSettings,
         scales: tuple[Scale | None, Scale | None] | None = None) -> list[tuple[int, float]]:
    """(row, fused score) pairs, best first, over the union of both candidate lists.

    ``scales`` are the two sides' scales taken from their unfiltered rankings, when these
    rankings are not (a filtered search); by default each ranking's own top ``depth``."""
    if scales is None:
        scales = scales_of(dense, lexical, settings)
    if settings.method == "rrf":
        fused = reciprocal_rank([dense[1][:settings.depth], lexical[1][:settings.depth]],
                                settings.rrf_k)
    elif settings.method == "score":
        weights = (settings.dense_weight, 1.0 - settings.dense_weight)
        fused = normalised_sum([dense, lexical], weights, scales)
    else:
        raise ValueError(f"unknown fusion method {settings.method!r}")
    return _best_first(fused, dense, lexical)


def scales_of(dense: Ranking, lexical: Ranking, settings: FusionSettings
              ) -> tuple[Scale | None, Scale | None]:
    """Both sides' scales, from their unfiltered rankings."""
    return Scale.of(dense, settings.depth), Scale.of(lexical, settings.depth, absent=0.0)


def reciprocal_rank(rankings: Sequence[np.ndarray], k: int) -> dict[int, float]:
    """Cormack et al. 2009: a document scores sum(1 / (k + rank)) over the rankings it is in."""
    fused: dict[int, float] = {}
    for rows in rankings:
        for rank, row in enumerate(rows, start=1):
            fused[int(row)] = fused.get(int(row), 0.0) + 1.0 / (k + rank)
    return fused


def normalised_sum(rankings: Sequence[Ranking], weights: Sequence[float],
                   scales: Sequence[Scale | None] | None = None) -> dict[int, float]:
    """Each ranking's scores scaled to [0, 1] (by its own best and worst unless ``scales``
    says otherwise), then a weighted sum (absent counts 0)."""
    fused: dict[int, float] = {}
    for position, ((scores, rows), weight) in enumerate(zip(rankings, weights)):
        if len(rows) == 0:
            continue
        scale = scales[position] if scales is not None else \
            Scale(float(np.max(scores)), float(np.min(scores)))
        if scale is None:
            continue
        for score, row in zip(scale(scores).tolist(), rows.tolist()):
            fused[row] = fused.get(row, 0.0) + weight * score
    return fused


def _best_first(fused: dict[int, float], dense: Ranking, lexical: Ranking
                ) -> list[tuple[int, float]]:
    """Highest fused score first; papers that tie (those past both sides' top ``depth``
    score 0) in dense order, then BM25 order, then by row."""
    order = {}
    for side, (_, rows) in enumerate((dense, lexical)):
        for place, row in enumerate(rows.tolist()):
            order.setdefault(row, (side, place))
    return sorted(fused.items(), key=lambda item: (-item[1], order.get(item[0], (2, 0)),
                                                   item[0]))
