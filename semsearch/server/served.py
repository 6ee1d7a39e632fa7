"""The index a server answers from: one Engine, shared by every request, one at a time.

Why one at a time: the engine's open state (its SQLite connections, the query model's runtime,
the vector index's search parameters) is meant for one thread at a time, and a query is a few
milliseconds of work that already uses every core it can (FAISS, onnxruntime). Two queries
running side by side would only interleave on the same cores. So requests run in the web
framework's worker threads, the event loop keeps accepting connections, and the engine itself
is taken in turn.

Before each request the engine moves to the index's newest committed state if a write (say,
`semsearch add` in another process) committed since the last one: a request sees a state
whole, the one before a write or the one after, never part of one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from semsearch.engine import Engine
from semsearch.filters import FacetValue


class ServedIndex:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()
        self._facets: dict[tuple, dict[str, list[FacetValue]]] = {}

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        """The engine, on the newest state, for this request alone."""
        with self._lock:
            if self._engine.refresh():
                self._facets.clear()
            yield self._engine

    def facets(self, kinds: Sequence[str], limit: int) -> dict[str, list[FacetValue]]:
        """``Engine.facets``, kept until the index changes: counting them reads every paper's
        facets, and a page asks for them at every load."""
        with self.engine() as engine:
            key = (tuple(kinds), limit)
            if key not in self._facets:
                self._facets[key] = engine.facets(kinds, limit)
            return self._facets[key]

    def warm_up(self) -> None:
        with self.engine() as engine:
            engine.warm_up()

    def close(self) -> None:
        with self._lock:
            self._engine.close()
