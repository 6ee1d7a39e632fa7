"""Relevance feedback: papers like the ones a user gives, and unlike others.

The dense side searches from the given papers' stored vectors: "classifier" (the default)
trains a logistic regression per query, liked papers against the disliked ones and 200 random
papers, and searches by its weight vector; "rocchio" from the liked papers' mean minus a
quarter of the disliked ones' mean. In hybrid mode the liked papers' texts also go to BM25 as
one query, fused as in search. Measured with relevance feedback on Cranfield: see
benchmarks/README.md.
"""

from __future__ import annotations

import numpy as np

from semsearch.errors import QueryError
from semsearch.search.fusion import FusionSettings
from semsearch.search.ranking import Sides, hybrid, pairs
from semsearch.search.view import IndexView

METHODS = ("classifier", "rocchio")
DEFAULT_METHOD = "classifier"


def check_method(method: str) -> None:
    if method not in METHODS:
        raise QueryError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def rank_like(view: IndexView, liked_rows: list[int], disliked_rows: list[int], k: int,
              method: str, mode: str, allowed: np.ndarray | None,
              fusion: FusionSettings) -> list[tuple[int, float]]:
    """The top k (row, score) papers like ``liked_rows`` and unlike ``disliked_rows``, none of
    them among the answers."""
    exclude = frozenset(liked_rows + disliked_rows)
    query = None if mode == "lexical" else \
        _direction(view, liked_rows, disliked_rows, method, exclude).reshape(1, -1)

    def dense(wanted: int, allowed: np.ndarray | None):
        return view.dense(query, wanted, allowed, exclude)[0]

    def lexical(wanted: int, allowed: np.ndarray | None):
        found = view.documents.by_rows(liked_rows)
        text = " ".join(found[row].text for row in liked_rows)
        scores, rows = view.lexical(text, wanted + len(exclude), allowed)
        keep = ~np.isin(rows, list(exclude))
        return scores[keep][:wanted], rows[keep][:wanted]

    if mode == "dense":
        return pairs(dense(k, allowed))
    if mode == "lexical":
        return pairs(lexical(k, allowed))
    return hybrid(Sides(dense=dense, lexical=lexical), k, allowed, fusion)


def _direction(view: IndexView, liked_rows: list[int], disliked_rows: list[int], method: str,
               exclude: frozenset[int]) -> np.ndarray:
    """The query vector of the dense side, at unit length: the liked papers' mean less a
    quarter of the disliked ones' (rocchio), or a classifier's weights."""
    liked = view.vectors(liked_rows)
    disliked = view.vectors(disliked_rows) if disliked_rows \
        else np.zeros((0, liked.shape[1]), np.float32)
    if method == "rocchio" or (len(liked) == 1 and not len(disliked)):
        # one paper and nothing to contrast it with: its own vector is the query
        query = liked.mean(axis=0) - (0.25 * disliked.mean(axis=0) if len(disliked) else 0)
    else:
        query = _classifier_direction(view, liked, disliked, set(exclude))
    return (query / max(float(np.linalg.norm(query)), 1e-12)).astype(np.float32)


def liked_centre(view: IndexView, liked_rows: list[int]) -> np.ndarray:
    """The liked papers' mean vector, normalised: what a hit's score is its cosine to."""
    centre = view.vectors(liked_rows).mean(axis=0)
    return (centre / max(float(np.linalg.norm(centre)), 1e-12)).astype(np.float32)


def _classifier_direction(view: IndexView, liked: np.ndarray, disliked: np.ndarray,
                          known: set[int]) -> np.ndarray:
    """The weights of a logistic regression separating liked papers from disliked and random
    ones: ranking by them is an inner-product search, so the vector index answers it."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    sample = [row for row in view.documents.random_rows(200, rng) if row not in known]
    others = view.vectors(sample) if sample else np.zeros((0, liked.shape[1]), np.float32)
    features = np.concatenate([liked, disliked, others])
    labels = np.r_[np.ones(len(liked)), np.zeros(len(features) - len(liked))]
    if labels.min() == labels.max():
        return liked.mean(axis=0)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    model.fit(features, labels)
    return model.coef_[0].astype(np.float32)
