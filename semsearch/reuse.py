"""Vectors a build takes instead of embedding papers again.

Two sources, both matched by a paper's exact title and abstract, both only where the same
model (fp32 or int8) made them:

- the live index: running `semsearch index` again on the same or a grown export embeds only
  what is new or changed;
- an interrupted build of this index: what it wrote durably before it was stopped, stretch by
  stretch, each stretch checked against the checksum recorded with it (one that fails is
  embedded again, never taken).

(An interrupted `add` keeps its vectors in ``store.pending``.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from semsearch import _fs
from semsearch.errors import StoreError
from semsearch.index import segments as segment_files
from semsearch.index.segments import Segment, SegmentSet
from semsearch.store import DocumentTable, IndexFolder, Snapshot, documents
from semsearch.store.folder import EmbeddedSoFar

#: rows between evictions of the pages read from a source's vectors
EVICT_EVERY = 16_384


def block_digest(segment: Path, start: int, end: int) -> str:
    """sha256 of positions [start, end) of a segment's rows and vectors, as on disk."""
    digest = hashlib.sha256()
    for name in (segment_files.ROWS, segment_files.VECTORS):
        array = _fs.load_array(segment / name, mmap_mode="r")
        digest.update(np.ascontiguousarray(array[start:end]).tobytes())
    return digest.hexdigest()


class _Live:
    """The live index's papers and vectors, pinned for the length of the build."""

    schema = "live"
    up_to = None

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        # read beside the snapshot's own connection: the build holds the writer lock, so no
        # write changes it meanwhile
        self.database = snapshot.path / documents.FILE
        self.store = SegmentSet([Segment(info, snapshot.part(info.name))
                                 for info in snapshot.commit.segments])

    def usable(self, theirs: np.ndarray) -> np.ndarray:
        return np.ones(len(theirs), dtype=bool)

    def vectors(self, theirs: np.ndarray) -> np.ndarray:
        return self.store.vectors(theirs)

    def evict(self) -> None:
        self.store.evict()

    def close(self) -> None:
        self.snapshot.close()


class _Interrupted:
    """What an unfinished build wrote durably: its rows and vectors up to its last
    checkpoint, in the stretches whose checksums hold."""

    schema = "previous"

    def __init__(self, attempt: EmbeddedSoFar, rows: np.ndarray, vectors: np.ndarray,
                 valid: np.ndarray):
        self.database = attempt.documents
        self._rows = rows              # the rows whose vectors are durable, ascending
        self._vectors = vectors
        self._valid = valid            # for each of them, whether its stretch is intact
        self.up_to = int(rows[-1]) if len(rows) else -1
        self.damaged = int((~valid).sum())

    @classmethod
    def of(cls, attempt: EmbeddedSoFar) -> _Interrupted | None:
        try:
            rows = _fs.load_array(attempt.segment / segment_files.ROWS, mmap_mode="r")[:attempt.rows]
            vectors = _fs.load_array(attempt.segment / segment_files.VECTORS, mmap_mode="r")
        except (OSError, ValueError):
            return None  # nothing to take: it is embedded again
        if len(rows) != attempt.rows or len(vectors) < attempt.rows:
            return None
        valid = np.zeros(attempt.rows, dtype=bool)
        start = 0
        for end, digest in attempt.blocks:  # none recorded (an older build): nothing taken
            end = min(end, attempt.rows)
            if start < end and block_digest(attempt.segment, start, end) == digest:
                valid[start:end] = True
            start = end
        return cls(attempt, np.array(rows), vectors, valid)

    def usable(self, theirs: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self._rows, theirs)
        inside = at < len(self._rows)
        found = np.zeros(len(theirs), dtype=bool)
        found[inside] = self._rows[at[inside]] == theirs[inside]
        found[found] = self._valid[at[found]]
        return found

    def vectors(self, theirs: np.ndarray) -> np.ndarray:
        return np.asarray(self._vectors[np.searchsorted(self._rows, theirs)])

    def evict(self) -> None:
        _fs.evict(self._vectors)

    def close(self) -> None:
        pass


class Reuse:
    """The sources a build takes vectors from, attached to its document table."""

    def __init__(self, table: DocumentTable, sources: list):
        self._table = table
        self._sources = sources
        for source in sources:
            table.attach(source.schema, source.database)
        #: papers whose vectors were taken from the live index, and from an interrupted build
        self.unchanged = 0
        self.resumed = 0
        #: papers an interrupted build had embedded whose vectors failed their checksum
        self.damaged = sum(getattr(source, "damaged", 0) for source in sources)

    @classmethod
    def gather(cls, folder: IndexFolder, table: DocumentTable, model: str,
               quantized: bool) -> Reuse | None:
        """What a build of ``folder`` by this model can take from; None if nothing."""
        sources: list = []
        try:
            if folder.exists():
                manifest = folder.manifest()
                if (manifest.model, manifest.quantized) == (model, quantized):
                    sources.append(_Live(Snapshot.pin(folder)))
        except StoreError:
            pass  # a damaged live index: nothing taken from it (the build replaces it)
        attempt = folder.interrupted_build()
        if attempt is not None and (attempt.model, attempt.quantized) == (model, quantized):
            if (interrupted := _Interrupted.of(attempt)) is not None:
                sources.append(interrupted)
        return cls(table, sources) if sources else None

    def take(self, rows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(the vectors of a batch of rows, with the ones taken filled in, or None if none;
        which rows were taken)."""
        taken = np.zeros(len(rows), dtype=bool)
        matrix = None
        for source in self._sources:
            remaining = rows[~taken]
            if not len(remaining):
                break
            mine, theirs = self._table.reusable_rows(source.schema, int(remaining[0]),
                                                     int(remaining[-1]), source.up_to)
            keep = np.isin(mine, remaining) & source.usable(theirs)
            mine, theirs = mine[keep], theirs[keep]
            if not len(mine):
                continue
            found = source.vectors(theirs)
            if matrix is None:
                matrix = np.empty((len(rows), found.shape[1]), dtype=np.float32)
            at = np.searchsorted(rows, mine)
            matrix[at] = found
            taken[at] = True
            before = self.unchanged + self.resumed
            if isinstance(source, _Live):
                self.unchanged += len(mine)
            else:
                self.resumed += len(mine)
            if (before + len(mine)) // EVICT_EVERY > before // EVICT_EVERY:
                source.evict()
        return matrix, taken

    def close(self) -> None:
        for source in self._sources:
            self._table.detach(source.schema)
            source.close()
        self._sources = []
