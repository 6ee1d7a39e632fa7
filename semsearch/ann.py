"""The vector index: FAISS index types behind one small interface.

Vectors are L2-normalised, so inner product is cosine similarity. Every vector carries the
int64 row id of its document in the store; search answers with those ids.
The store decides where files go; this module only turns an index into a file and back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from semsearch.errors import StoreError


class VectorIndex(Protocol):
    kind: str
    dimension: int

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each of shape (len(queries), k), best first; id -1 where fewer than k."""

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of one document, for more-like-this without re-embedding."""

    def save(self, path: Path) -> None: ...


class ExactIndex:
    """Brute-force inner product: exact, and fast enough below a few hundred thousand vectors."""

    kind = "exact"

    def __init__(self, index) -> None:
        self._index = index
        self.dimension = index.d

    @classmethod
    def empty(cls, dimension: int) -> ExactIndex:
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def load(cls, path: Path) -> ExactIndex:
        import faiss

        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as error:
            raise StoreError(f"{path}: cannot read the vector index ({_first_line(error)})") from None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {vectors.shape}")
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        return self._index.search(queries, k)

    def vector(self, row: int) -> np.ndarray:
        return self._index.reconstruct(int(row))

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))


#: kind -> class; the one place an index type is chosen by name
INDEX_TYPES: dict[str, type] = {"exact": ExactIndex}


def empty_index(kind: str, dimension: int) -> VectorIndex:
    return _index_type(kind).empty(dimension)


def load_index(kind: str, path: Path) -> VectorIndex:
    return _index_type(kind).load(path)


def _index_type(kind: str) -> type:
    try:
        return INDEX_TYPES[kind]
    except KeyError:
        raise StoreError(f"unknown index type {kind!r}; known: {', '.join(INDEX_TYPES)}") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
