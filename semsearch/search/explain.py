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
_WORD = re.compile(r"\w+")
#: sentences of one abstract compared with the query at most (those sharing the most of its
#: words): each is embedded, so this bounds what an explanation costs
MAX_SENTENCES = 12
#: and the longest sentence read
MAX_SENTENCE_CHARS = 1_000


def explained(view: IndexView, embedder, text: str, vector: np.ndarray, hits: list[Hit],
              rows: list[int]) -> list[Hit]:
    """Each hit (at ``rows``) with its explanation for the query ``text`` (``vector``)."""
    words = set(_WORD.findall(text.casefold()))
    groups = [candidates(sentences(hit.abstract), words) or [hit.title] for hit in hits]
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


def candidates(found: list[str], words: set[str]) -> list[str]:
    """At most MAX_SENTENCES of an abstract's sentences, in their order: those sharing the most
    of the query's ``words`` (the earlier where they share as many)."""
    found = [sentence[:MAX_SENTENCE_CHARS] for sentence in found]
    if len(found) <= MAX_SENTENCES:
        return found
    shared = [len(words & set(_WORD.findall(sentence.casefold()))) for sentence in found]
    chosen = sorted(range(len(found)), key=lambda i: (-shared[i], i))[:MAX_SENTENCES]
    return [found[i] for i in sorted(chosen)]


def sentences(text: str) -> list[str]:
    """An abstract's sentences: split after . ! or ? where a capital, digit or bracket follows."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]
