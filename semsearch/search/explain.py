"""Why a paper was found: the sentence of its abstract closest to the query in meaning (by
the same model), and the query's words it contains (as BM25 read them, function words left
out)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from semsearch.documents import Explanation, Hit
from semsearch.search.view import IndexView

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def explained(view: IndexView, embedder, text: str, vector: np.ndarray, hits: list[Hit],
              rows: list[int]) -> list[Hit]:
    """Each hit (at ``rows``) with its explanation for the query ``text`` (``vector``)."""
    groups = [sentences(hit.abstract) or [hit.title] for hit in hits]
    flat = [sentence for group in groups for sentence in group]
    if not flat:
        return hits
    similarity = embedder.embed_queries(flat) @ vector
    out, start = [], 0
    for hit, row, group in zip(hits, rows, groups):
        scores = similarity[start:start + len(group)]
        start += len(group)
        best = int(np.argmax(scores))
        out.append(dataclasses.replace(hit, explanation=Explanation(
            sentence=group[best], sentence_score=float(scores[best]),
            matched_terms=view.matched_words(text, row))))
    return out


def sentences(text: str) -> list[str]:
    """An abstract's sentences: split after . ! or ? where a capital, digit or bracket follows."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]
