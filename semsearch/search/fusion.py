"""Fusing rankings from dense and lexical search into one.

Two ways, both measured on SciFact train (benchmarks/results/quality.json): reciprocal rank
fusion, which needs only ranks, and a weighted sum of min-max normalised scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: one ranking: (scores, rows), best first
Ranking = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class FusionSettings:
    """How hybrid search fuses; defaults tuned on SciFact train (see benchmarks/)."""

    method: str = "score"        # "score" (normalised score sum) or "rrf"
    rrf_k: int = 60              # rank constant of reciprocal rank fusion
    dense_weight: float = 0.5    # share of the dense side, in score fusion
    depth: int = 200             # candidates taken from each side


def fuse(dense: Ranking, lexical: Ranking, settings: FusionSettings) -> list[tuple[int, float]]:
    """(row, fused score) pairs, best first, over the union of both candidate lists."""
    if settings.method == "rrf":
        return _best_first(reciprocal_rank([dense[1], lexical[1]], settings.rrf_k))
    if settings.method == "score":
        weights = (settings.dense_weight, 1.0 - settings.dense_weight)
        return _best_first(normalised_sum([dense, lexical], weights))
    raise ValueError(f"unknown fusion method {settings.method!r}")


def reciprocal_rank(rankings: Sequence[np.ndarray], k: int) -> dict[int, float]:
    """Cormack et al. 2009: a document scores sum(1 / (k + rank)) over the rankings it is in."""
    fused: dict[int, float] = {}
    for rows in rankings:
        for rank, row in enumerate(rows, start=1):
            fused[int(row)] = fused.get(int(row), 0.0) + 1.0 / (k + rank)
    return fused


def normalised_sum(rankings: Sequence[Ranking], weights: Sequence[float]) -> dict[int, float]:
    """Each ranking's scores min-max scaled to [0, 1], then a weighted sum (absent counts 0)."""
    fused: dict[int, float] = {}
    for (scores, rows), weight in zip(rankings, weights):
        if len(rows) == 0:
            continue
        low, high = float(np.min(scores)), float(np.max(scores))
        span = high - low or 1.0
        for score, row in zip(scores, rows):
            fused[int(row)] = fused.get(int(row), 0.0) + weight * (float(score) - low) / span
    return fused


def _best_first(fused: dict[int, float]) -> list[tuple[int, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
