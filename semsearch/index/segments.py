"""Segments: rows written together, with their float vectors and BM25 postings, never
changed once written; and the policy that merges them.

A build writes one segment; each `add` writes a small one beside it; `remove` only records
tombstones. Searching reads every live segment: the large ones through the trained vector
index, the small ones exactly, and BM25 over all of them. The merge policy keeps the count
of small segments low, so a search stays about as fast after many writes as after none.

Files of a segment (``seg-NNNNNN/``): ``rows.npy`` (int64, ascending), ``vectors.npy``
(float32, one row each, in the same order) and the postings of ``semsearch.index.lexical``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semsearch import _fs
from semsearch.errors import StoreError
from semsearch.index import lexical, vector
from semsearch.store.records import AnnInfo, Commit, DerivedInfo, SegmentInfo

if TYPE_CHECKING:
    from semsearch.store.folder import PartFiles

ROWS, VECTORS = "rows.npy", "vectors.npy"

#: progress(stage, done, total), as ``semsearch.indexing.Progress``
Progress = Callable[[str, int, "int | None"], None]


def _checksums(folder: Path, progress: Progress | None) -> dict[str, dict]:
    """Each file's checksum; progress in bytes (stage "checksums")."""
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    total, done, files = sum(p.stat().st_size for p in paths), 0, {}
    for path in paths:
        files[path.name] = _fs.file_checksum(path)
        done += files[path.name]["bytes"]
        if progress:
            progress("checksums", done, total)
    return files


# -- the merge policy, in one place ---------------------------------------------------------

#: rows outside the trained vector index (searched exactly) before they are folded into it:
#: exact search over this many costs about what the index's own search does
FOLD_AT_ROWS = 20_000
#: small segments before they are merged into one (each costs a search a few array lookups)
MERGE_AT_SEGMENTS = 8


@dataclass(frozen=True)
class MergePlan:
    """What the policy asks for after a write: segments to merge into one, and whether the
    merged segment then joins the trained vector index."""

    merge: tuple[str, ...]
    fold: bool


def plan(commit: Commit) -> MergePlan | None:
    """The merge the live state needs, if any.

    - Segments outside the trained index (new papers, searched exactly) are folded into it
      (FAISS add_with_ids, no re-training) once they hold FOLD_AT_ROWS rows: one merged
      segment joins the index.
    - More than MERGE_AT_SEGMENTS of them are merged into one, dropping deleted rows.
    - With no trained index (an exact index), the same count rule merges every segment but
      the largest.
    Re-training, and merging everything into one segment, is `semsearch reindex`.
    """
    uncovered = commit.uncovered
    if commit.ann is not None:
        if sum(s.count for s in uncovered) >= FOLD_AT_ROWS:
            return MergePlan(tuple(s.name for s in uncovered), fold=True)
        if len(uncovered) > MERGE_AT_SEGMENTS:
            return MergePlan(tuple(s.name for s in uncovered), fold=False)
        return None
    if len(commit.segments) > MERGE_AT_SEGMENTS:
        largest = max(commit.segments, key=lambda s: s.count)
        return MergePlan(tuple(s.name for s in commit.segments if s is not largest), fold=False)
    return None


# -- writing ---------------------------------------------------------------------------------

class SegmentWriter:
    """Writes one segment of ``count`` rows, appended in ascending row order, streaming: the
    vectors go straight to their file, the postings to bounded buffers."""

    def __init__(self, folder: Path, name: str, count: int, dimension: int,
                 tokenizer: lexical.Tokenizer):
        self.name = name
        self.path = folder / name
        self.path.mkdir(parents=True, exist_ok=False)
        self._rows = _fs.ArrayWriter(self.path / ROWS, np.int64, (count,))
        self._vectors = _fs.ArrayWriter(self.path / VECTORS, np.float32, (count, dimension))
        self._postings = lexical.PostingsWriter(self.path, tokenizer)
        self.dimension = dimension
        self._last_row = -1

    def append(self, rows: np.ndarray, vectors: np.ndarray, texts: list[str]) -> None:
        if len(rows) and (rows[0] <= self._last_row or np.any(np.diff(rows) <= 0)):
            raise ValueError("rows must be appended in ascending order")
        self._rows.append(rows)
        self._vectors.append(vectors)
        self._postings.add(texts)
        if len(rows):
            self._last_row = int(rows[-1])

    @property
    def rows_written(self) -> int:
        return self._rows.rows

    def sync(self) -> None:
        """Make the rows and vectors appended so far durable (the postings are not: they are
        made again from the texts)."""
        self._rows.sync()
        self._vectors.sync()

    def finish(self, progress: Progress | None = None) -> SegmentInfo:
        """Write the postings, fsync everything, and describe the segment with checksums."""
        self._rows.close()
        self._vectors.close()
        self._postings.finish(progress)
        rows = _fs.load_array(self.path / ROWS, mmap_mode="r")
        return described(self.path, self.name, rows, self._postings.tokens, progress)


def described(path: Path, name: str, rows: np.ndarray, tokens: int,
              progress: Progress | None = None) -> SegmentInfo:
    """The record of a segment whose files were just written into ``path``, fsynced."""
    _fs.fsync_tree(path)
    files = _checksums(path, progress)
    return SegmentInfo(name=name, count=len(rows), first_row=int(rows[0]) if len(rows) else 0,
                       last_row=int(rows[-1]) if len(rows) else 0, tokens=tokens, files=files)


def describe_ann(folder: Path, name: str, kind: str, covers: tuple[str, ...], count: int,
                 tuning: dict, progress: Progress | None = None) -> AnnInfo:
    """The record of a vector index just saved into ``folder / name``, its files fsynced."""
    path = folder / name
    _fs.fsync_tree(path)
    files = _checksums(path, progress)
    return AnnInfo(name=name, kind=kind, covers=covers, count=count, tuning=tuning, files=files)


def describe_derived(folder: Path, name: str, kind: str, count: int, data: dict,
                     progress: Progress | None = None) -> DerivedInfo:
    """The record of a derived part just written into ``folder / name``, its files fsynced."""
    path = folder / name
    _fs.fsync_tree(path)
    return DerivedInfo(name=name, kind=kind, count=count, data=data,
                       files=_checksums(path, progress))


# -- reading ---------------------------------------------------------------------------------

class Segment:
    """One segment of a pinned state, its arrays memory-mapped when first used."""

    def __init__(self, info: SegmentInfo, files: PartFiles):
        self.info = info
        self.files = files
        self._rows: np.ndarray | None = None
        self._vectors: np.ndarray | None = None
        self.postings = lexical.SegmentPostings(files)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = self._load(ROWS)
        return self._rows

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            # a plain array over the same memory: indexing a np.memmap costs more per call
            self._vectors = self._load(VECTORS).view(np.ndarray)
        return self._vectors

    def _load(self, name: str) -> np.ndarray:
        try:
            return _fs.load_array(self.files.path(name), mmap_mode="r")
        except (OSError, ValueError) as error:
            raise StoreError(f"{self.files.shown(name)}: cannot read the segment "
                             f"({error})") from None

    @property
    def gapless(self) -> bool:
        """Whether it holds every row from its first to its last: a row's position is then
        its offset from the first."""
        return self.info.last_row - self.info.first_row == self.info.count - 1

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Where rows this segment holds sit in its arrays."""
        if self.gapless:
            return np.asarray(rows, dtype=np.int64) - self.info.first_row
        return np.searchsorted(self.rows, rows)

    def holds(self, rows: np.ndarray) -> np.ndarray:
        """For each row, whether this segment holds it."""
        rows = np.asarray(rows, dtype=np.int64)
        inside = (rows >= self.info.first_row) & (rows <= self.info.last_row)
        if self.gapless or not inside.any():
            return inside
        at = np.minimum(np.searchsorted(self.rows, rows), self.info.count - 1)
        return inside & (self.rows[at] == rows)


class SegmentSet:
    """The live segments of a state, by row: the vector store that re-ranking and `like`
    read from, and the parts BM25 searches."""

    def __init__(self, segments: list[Segment]):
        self.segments = sorted(segments, key=lambda s: s.info.first_row)
        self._firsts = [s.info.first_row for s in self.segments]

    def __iter__(self):
        return iter(self.segments)

    def __len__(self) -> int:
        return len(self.segments)

    def of_row(self, row: int) -> Segment | None:
        """The segment holding ``row``. Segments' row ranges may interleave (a merge of every
        segment but the largest spans it), so every segment whose range covers the row is
        asked, the latest-starting first."""
        for at in range(bisect.bisect_right(self._firsts, int(row)) - 1, -1, -1):
            segment = self.segments[at]
            if segment.holds(np.array([row]))[0]:
                return segment
        return None

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The float vectors of these rows, in their order, each read from the segment that
        holds it (ranges may interleave: see ``of_row``)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.segments) == 1:
            segment = self.segments[0]
            return segment.vectors.take(segment.positions(rows), axis=0)
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        missing = np.ones(len(rows), dtype=bool)
        for segment in self.segments:
            chosen = missing & segment.holds(rows)
            if chosen.any():
                out[chosen] = segment.vectors.take(segment.positions(rows[chosen]), axis=0)
                missing &= ~chosen
        if missing.any():
            raise KeyError(int(rows[missing][0]))
        return out

    def best_of(self, queries: np.ndarray, candidates: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the k of its candidate rows (-1: none) closest to it by their float
        vectors, read where they lie: (scores, rows), best first, -inf and -1 where fewer."""
        if len(self.segments) == 1 and self.segments[0].gapless:  # positions are an offset
            first = self.segments[0].info.first_row
            scores, best = vector.best_by_position(self.segments[0].vectors, queries,
                                                   candidates - first, k)
            return scores, np.where(best >= 0, best + first, -1)
        parts = []
        for segment in self.segments:
            held = segment.holds(candidates)
            if held.any():
                # each query's held positions first, largest first: the rest are -1
                positions = np.sort(np.where(held, segment.positions(candidates), -1),
                                    axis=1)[:, ::-1]
                scores, best = vector.best_by_position(segment.vectors, queries, positions, k)
                parts.append((scores, np.where(best >= 0, segment.rows[best], -1)))
        if not parts:
            return (np.full((len(queries), k), -np.inf, dtype=np.float32),
                    np.full((len(queries), k), -1, dtype=np.int64))
        return vector.merged(parts, k)

    def evict(self) -> None:
        """Let go of the vector pages read so far (see ``_fs.evict``): for long passes."""
        for segment in self.segments:
            _fs.evict(segment.vectors)

    @property
    def dimension(self) -> int:
        return int(self.segments[0].vectors.shape[1]) if self.segments else 0

    def vector(self, row: int) -> np.ndarray:
        segment = self.of_row(row)
        if segment is None:
            raise KeyError(row)
        return np.array(segment.vectors[int(segment.positions(np.array([row]))[0])])
