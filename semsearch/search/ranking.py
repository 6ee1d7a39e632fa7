"""Ranking papers for a query: by meaning (dense), by words (lexical, BM25), or both fused
(hybrid, which scores best on SciFact and Cranfield: see benchmarks/README.md)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semsearch.errors import QueryError
from semsearch.search.fusion import FusionSettings, fuse
from semsearch.search.view import IndexView, Ranking

#: search modes, and the one searches use unless told otherwise
MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise QueryError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")


def depth(k: int, mode: str, fusion: FusionSettings) -> int:
    """How many candidates each side searches for: fusion wants a deeper pool."""
    return max(k, fusion.depth) if mode == "hybrid" else k


def rank(view: IndexView, texts: Sequence[str], vectors: np.ndarray | None, k: int, mode: str,
         allowed: np.ndarray | None, fusion: FusionSettings) -> list[list[tuple[int, float]]]:
    """The top k (row, score) of each query: one side's ranking, or both fused."""
    wanted = depth(k, mode, fusion)
    dense = view.dense(vectors, wanted, allowed) if mode != "lexical" else [None] * len(texts)
    answers = []
    for position, text in enumerate(texts):
        lexical = view.lexical(text, wanted, allowed) if mode != "dense" else None
        answers.append(combined(dense[position], lexical, k, fusion))
    return answers


def combined(dense: Ranking | None, lexical: Ranking | None, k: int,
             fusion: FusionSettings) -> list[tuple[int, float]]:
    """The top k (row, score): from the one side searched, or both fused."""
    if lexical is None:
        return pairs(dense)[:k]
    if dense is None:
        return pairs(lexical)[:k]
    return fuse(dense, lexical, fusion)[:k]


def pairs(ranking: Ranking) -> list[tuple[int, float]]:
    scores, rows = ranking
    return list(zip(rows.tolist(), scores.tolist()))
