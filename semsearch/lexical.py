"""Lexical search: BM25 over title and abstract, with bm25s.

Built in the same pass as the vector index and saved in the same generation, so the two
always describe the same documents. Answers with the same document rows as the vector index.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from semsearch.errors import StoreError

ROWS_FILE = "rows.npy"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class LexicalSettings:
    """BM25 parameters and tokenisation; defaults tuned on SciFact train (see benchmarks/)."""

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = None


class LexicalIndex:
    def __init__(self, retriever, rows: np.ndarray, settings: LexicalSettings):
        self._retriever = retriever
        self._rows = rows
        self.settings = settings

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
        return cls(retriever, np.concatenate(rows) if rows else np.zeros(0, np.int64), settings)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        import bm25s

        try:
            settings = LexicalSettings(**json.loads((path / SETTINGS_FILE).read_text()))
            rows = np.load(path / ROWS_FILE)
            retriever = bm25s.BM25.load(str(path), mmap=True, show_progress=False)
        except (OSError, ValueError, TypeError) as error:
            raise StoreError(f"{path}: cannot read the BM25 index ({error})") from None
        return cls(retriever, rows, settings)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(path), show_progress=False)
        np.save(path / ROWS_FILE, self._rows)
        (path / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings)))

    def __len__(self) -> int:
        return len(self._rows)

    def tokens(self, text: str) -> list[str]:
        """The query's terms as the index sees them (lower-cased, stemmed, no stopwords)."""
        import bm25s

        settings = self.settings
        return bm25s.tokenize([text], stopwords=settings.stopwords or [], stemmer=_stemmer(settings),
                              return_ids=False, show_progress=False)[0]

    def search(self, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best k documents that share a term with ``text``, best first."""
        terms = [term for term in self.tokens(text) if term]
        k = min(k, len(self._rows))
        if not terms or k == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        positions, scores = self._retriever.retrieve([terms], k=k, show_progress=False,
                                                     n_threads=1)
        keep = scores[0] > 0
        return scores[0][keep], self._rows[positions[0][keep]]


def _stemmer(settings: LexicalSettings):
    if not settings.stemmer:
        return None
    import Stemmer

    return Stemmer.Stemmer(settings.stemmer)
