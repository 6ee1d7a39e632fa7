"""Lexical search: BM25 over title and abstract, with bm25s.

Built in the same pass as the vector index and saved in the same generation, so the two
always describe the same documents. Answers with the same document rows as the vector index.

bm25s builds the index: a sparse matrix of each term's BM25 score in each document. A query
only sums a few of its columns, so queries read bm25s's saved arrays with numpy instead of
importing bm25s, whose import (scipy.sparse and more) alone cost 0.24 s of a one-shot CLI
query's 1 s budget. tests/test_lexical.py checks the two give the same scores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semsearch.errors import StoreError

if TYPE_CHECKING:
    from semsearch.store import PartFiles

ROWS_FILE = "rows.npy"
SETTINGS_FILE = "settings.json"
#: bm25s's own names for its saved arrays and vocabulary
SCORES_FILE, TERMS_FILE, OFFSETS_FILE, VOCABULARY_FILE = (
    "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json")
#: English function words, left out of explanations (search itself keeps them: BM25 was tuned
#: without a stopword list)
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves via using use used
""".split())
#: bm25s's default token pattern: runs of two or more word characters
TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class LexicalSettings:
    """BM25 parameters and tokenisation; defaults tuned on SciFact train (see benchmarks/)."""

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = None


class LexicalIndex:
    def __init__(self, scores: np.ndarray, terms: np.ndarray, offsets: np.ndarray,
                 vocabulary: dict[str, int], rows: np.ndarray, settings: LexicalSettings):
        self._scores = scores
        self._terms = terms      # document positions, column by column
        self._offsets = offsets  # where each term's column starts in the two arrays above
        self._vocabulary = vocabulary
        self._rows = rows
        self.settings = settings
        self._stem = _stemmer(settings)

    @classmethod
    def build(cls, batches: Iterable[tuple[np.ndarray, list[str]]],
              settings: LexicalSettings = LexicalSettings()) -> LexicalIndex:
        """From (rows, texts) batches, tokenised as they come so texts are not all held."""
        import bm25s
        from bm25s.tokenization import Tokenized, Tokenizer

        tokenizer = Tokenizer(stopwords=settings.stopwords or [], stemmer=_stemmer(settings))
        token_ids: list[list[int]] = []
        rows: list[np.ndarray] = []
        for batch_rows, texts in batches:
            token_ids.extend(tokenizer.tokenize(list(texts), update_vocab=True, return_as="ids",
                                                show_progress=False))
            rows.append(np.asarray(batch_rows, dtype=np.int64))
        retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
        retriever.index(Tokenized(ids=token_ids, vocab=tokenizer.get_vocab_dict()),
                        show_progress=False)
        matrix = retriever.scores
        return cls(np.asarray(matrix["data"]), np.asarray(matrix["indices"]),
                   np.asarray(matrix["indptr"]), dict(retriever.vocab_dict),
                   np.concatenate(rows) if rows else np.zeros(0, np.int64), settings)

    @classmethod
    def load(cls, files: PartFiles) -> LexicalIndex:
        try:
            settings = LexicalSettings(**json.loads(files.path(SETTINGS_FILE).read_text()))
            return cls(np.load(files.path(SCORES_FILE), mmap_mode="r"),
                       np.load(files.path(TERMS_FILE), mmap_mode="r"),
                       np.load(files.path(OFFSETS_FILE), mmap_mode="r"),
                       json.loads(files.path(VOCABULARY_FILE).read_text()),
                       np.load(files.path(ROWS_FILE)), settings)
        except (OSError, ValueError, TypeError) as error:
            raise StoreError(f"{files.shown()}: cannot read the BM25 index ({error})") from None

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for name, array in ((SCORES_FILE, self._scores), (TERMS_FILE, self._terms),
                            (OFFSETS_FILE, self._offsets), (ROWS_FILE, self._rows)):
            np.save(path / name, np.asarray(array))
        (path / VOCABULARY_FILE).write_text(json.dumps(self._vocabulary, ensure_ascii=False))
        (path / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings)))

    def __len__(self) -> int:
        return len(self._rows)

    def scores(self, text: str) -> np.ndarray:
        """The BM25 score of every document for ``text``, by position."""
        totals = np.zeros(len(self._rows), dtype=np.float32)
        for term in self.tokens(text):
            column = self._vocabulary.get(term)
            if column is None:
                continue
            start, stop = self._offsets[column], self._offsets[column + 1]
            totals[self._terms[start:stop]] += self._scores[start:stop]  # unique per column
        return totals

    def matched_terms(self, text: str, row: int) -> list[str]:
        """The words of ``text`` whose index terms occur in the document at ``row``; common
        function words ("the", "of") are left out, as telling nothing."""
        position = self._positions(np.array([row]))
        if not len(position):
            return []
        matched = []
        for word, term in self._words_and_terms(text):
            column = self._vocabulary.get(term)
            if column is None or word in matched or word in STOPWORDS:
                continue
            start, stop = self._offsets[column], self._offsets[column + 1]
            if position[0] in self._terms[start:stop]:
                matched.append(word)
        return matched

    def _positions(self, rows: np.ndarray) -> np.ndarray:
        """Positions of the rows this index holds (rows it does not hold are left out)."""
        positions = np.minimum(np.searchsorted(self._rows, rows), max(len(self._rows) - 1, 0))
        return positions[self._rows[positions] == rows] if len(self._rows) else positions[:0]

    def tokens(self, text: str) -> list[str]:
        """The query's terms as the index sees them: bm25s's tokenisation, done here."""
        return [term for _, term in self._words_and_terms(text)]

    def _words_and_terms(self, text: str) -> list[tuple[str, str]]:
        """Each word of ``text`` that is not a stopword, with the term it becomes."""
        words = TOKEN.findall(text.lower())
        if self.settings.stopwords:
            from bm25s.stopwords import STOPWORDS_EN

            stop = set(STOPWORDS_EN)
            words = [word for word in words if word not in stop]
        return list(zip(words, self._stem.stemWords(words) if self._stem else words))

    def search(self, text: str, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best k documents that share a term with ``text``, best first;
        only among the ``allowed`` rows (sorted), if given."""
        k = min(k, len(self._rows))
        totals = self.scores(text)
        if allowed is not None:
            passing = np.zeros(len(self._rows), dtype=bool)
            passing[self._positions(allowed)] = True
            totals[~passing] = 0
        matched = np.flatnonzero(totals > 0)
        if k == 0 or len(matched) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        best = matched[np.argsort(-totals[matched], kind="stable")[:k]]
        return totals[best], self._rows[best]


def _stemmer(settings: LexicalSettings):
    if not settings.stemmer:
        return None
    import Stemmer

    return Stemmer.Stemmer(settings.stemmer)
