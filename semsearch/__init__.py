"""semsearch: semantic search over scientific paper abstracts.

    import semsearch
    engine = semsearch.Engine("my-papers")
    engine.build(semsearch.read_documents(["papers.jsonl"]))
    for hit in engine.search("retrieval augmented generation", k=5):
        print(hit.score, hit.title)

Names are imported on first use, so ``import semsearch`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Engine": "semsearch.engine",
    "BuildReport": "semsearch.engine",
    "IndexInfo": "semsearch.engine",
    "UpdateReport": "semsearch.engine",
    "Document": "semsearch.documents",
    "Hit": "semsearch.documents",
    "Explanation": "semsearch.documents",
    "Filter": "semsearch.filters",
    "FacetValue": "semsearch.filters",
    "LexicalSettings": "semsearch.index.lexical",
    "FusionSettings": "semsearch.search.fusion",
    "read_documents": "semsearch.readers",
    "ReadOptions": "semsearch.readers",
    "RaySettings": "semsearch.ray_embedding",
    "sample_paths": "semsearch.data",
    "SemsearchError": "semsearch.errors",
    "InputError": "semsearch.errors",
    "QueryError": "semsearch.errors",
    "StoreError": "semsearch.errors",
    "UnknownPaper": "semsearch.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from semsearch.data import sample_paths
    from semsearch.documents import Document, Explanation, Hit
    from semsearch.engine import BuildReport, Engine, IndexInfo, UpdateReport
    from semsearch.filters import FacetValue, Filter
    from semsearch.index.lexical import LexicalSettings
    from semsearch.search.fusion import FusionSettings
    from semsearch.errors import (InputError, QueryError, SemsearchError, StoreError,
                                  UnknownPaper)
    from semsearch.ray_embedding import RaySettings
    from semsearch.readers import ReadOptions, read_documents


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'semsearch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
