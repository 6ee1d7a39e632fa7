"""The index a server answers from: a few engines over it, each serving one request at a time.

Why several: an engine's calls run one at a time (its SQLite connections, the vector index's
search parameters and its open state are one thread's), but most of a query's work (FAISS,
onnxruntime, numpy, SQLite) lets go of Python's lock, so two requests on two engines run side
by side on two cores. Requests run in the web framework's worker threads; each takes a free
engine (opening another, a ``twin`` of the first, while there are fewer than ``workers``) and
gives it back when done.

Before each request its engine moves to the index's newest committed state if a write (say,
`semsearch add` in another process) committed since that engine's last request: a request
sees a state whole, the one before a write or the one after, never part of one.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from semsearch.engine import Engine
from semsearch.filters import FacetValue
from semsearch.overview import CollectionMap, DuplicateGroup


def default_workers() -> int:
    """Engines a server keeps: one a core, two at least (a slow request then cannot stall
    every other) and four at most (each holds the model and the vector index, and each
    query's model and search already use several cores)."""
    return min(4, max(2, os.cpu_count() or 1))


class ServedIndex:
    def __init__(self, engine: Engine, workers: int | None = None):
        self._first = engine
        self._idle: queue.SimpleQueue[Engine] = queue.SimpleQueue()
        self._idle.put(engine)
        self._all = [engine]
        self._workers = max(1, workers or default_workers())
        self._lock = threading.Lock()
        self._results: dict[tuple, Any] = {}  # (state, what was asked): its answer

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        """An engine on the newest state, for this request alone."""
        engine = self._take()
        try:
            engine.refresh()
            yield engine
        finally:
            self._idle.put(engine)

    def _take(self) -> Engine:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._all) < self._workers:
                twin = self._first.twin()
                self._all.append(twin)
                return twin
        return self._idle.get()

    def facets(self, kinds: Sequence[str], limit: int) -> dict[str, list[FacetValue]]:
        """``Engine.facets``, kept for the state: a page asks for them at every load."""
        return self._kept(("facets", tuple(kinds), limit),
                          lambda engine: engine.facets(kinds, limit))

    def duplicates(self, threshold: float) -> list[DuplicateGroup]:
        """``Engine.duplicates``, kept for the state: a scan reads every paper's vector."""
        return self._kept(("duplicates", threshold),
                          lambda engine: engine.duplicates(threshold))

    def map(self) -> CollectionMap:
        """``Engine.map`` (never fitting one), kept for the state: a page asks for it whole."""
        return self._kept(("map",), lambda engine: engine.map(fit=False))

    def _kept(self, key: tuple, compute: Callable[[Engine], Any]) -> Any:
        """What ``compute`` gives on the newest state, worked out once for that state (the
        answers of an older state are let go when a newer one is asked)."""
        with self.engine() as engine:
            state = engine.state
            with self._lock:
                found = self._results.get((state, key))
            if found is None:
                found = compute(engine)
                with self._lock:
                    self._results = {k: v for k, v in self._results.items() if k[0] == state}
                    self._results[(state, key)] = found
            return found

    def warm_up(self) -> None:
        """Open every engine and start its query model now, not at the first requests."""
        engines = [self._take() for _ in range(self._workers)]
        try:
            for engine in engines:
                engine.warm_up()
        finally:
            for engine in engines:
                self._idle.put(engine)

    def close(self) -> None:
        with self._lock:
            for engine in self._all:
                engine.close()
