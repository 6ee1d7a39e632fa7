"""What an index records about itself: the manifest of a generation, written once when it is
created, and the commit record of each write, which names the state a reader sees.

A generation is one document database and the segments built beside it; a full build
(`semsearch index`) makes a new one, every other write commits a new record inside it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import StoreError

#: 1: a whole generation written by every change; 2: segments committed in the document
#: database (`semsearch upgrade` converts a version 1 index)
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Manifest:
    """What never changes for the life of a generation: the model its vectors come from."""

    model: str
    dimension: int
    metric: str = "cosine"
    #: whether the documents were embedded by the int8 model (`index --quantized`)
    quantized: bool = False
    format_version: int = FORMAT_VERSION
    created: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        data = _object(text, where, "manifest")
        if data.get("format_version", 1) > FORMAT_VERSION:
            raise StoreError(f"{where}: index format {data['format_version']} is newer than "
                             f"this semsearch understands ({FORMAT_VERSION}); upgrade semsearch")
        return _build(cls, data, where, "manifest")


@dataclass(frozen=True)
class SegmentInfo:
    """One segment: rows stored together with their vectors and BM25 postings, never changed
    once written. Rows deleted later stay in it, hidden by the tombstones, until a merge."""

    name: str
    #: rows it holds (deleted ones too), and the first and last of them
    count: int
    first_row: int
    last_row: int
    #: word count of its documents, for BM25's average document length
    tokens: int
    #: file name -> {"sha256", "bytes"}, computed once when the segment was written
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class AnnInfo:
    """A trained vector index over the rows of some segments (the others are searched
    exactly), with the search parameters it was tuned to and the recall they reached."""

    name: str
    kind: str
    covers: tuple[str, ...]
    count: int
    tuning: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class DerivedInfo:
    """A part computed from a state's vectors and texts (the map of the collection), kept
    with later states until refitted: its kind, the rows it was computed over (rows added
    later are worked out from it when read), what it says about itself, and its files."""

    name: str
    kind: str
    count: int
    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Commit:
    """The state of a generation after one write: its live segments and vector index."""

    number: int
    segments: tuple[SegmentInfo, ...]
    ann: AnnInfo | None
    #: "exact", "hnsw" or "ivf": what searches the vectors (exact: every segment, exactly)
    index_type: str
    target_recall: float
    #: BM25 settings the segments' postings were made with (see ``index.lexical``)
    lexical: dict[str, Any]
    #: papers searchable; rows ever used (new rows start above)
    count: int
    next_row: int
    #: papers added and removed since the vector index was last trained (`semsearch reindex`)
    changed_since_build: dict[str, int] = field(default_factory=lambda: {"added": 0,
                                                                         "removed": 0})
    #: names for the next segment or vector index
    next_name: int = 1
    created: str = ""
    #: derived parts (``DerivedInfo``), at most one of a kind
    derived: tuple[DerivedInfo, ...] = ()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: Path) -> Commit:
        data = _object(text, where, "commit record")
        try:
            data["segments"] = tuple(SegmentInfo(**s) for s in data["segments"])
            data["derived"] = tuple(DerivedInfo(**d) for d in data.get("derived") or ())
            if data.get("ann"):
                data["ann"] = AnnInfo(**{**data["ann"], "covers": tuple(data["ann"]["covers"])})
        except (KeyError, TypeError) as error:
            raise StoreError(f"{where}: damaged commit record ({error})") from None
        return _build(cls, data, where, "commit record")

    def files(self) -> dict[str, dict[str, Any]]:
        """Every file this state reads, by its path inside the generation, with checksums."""
        found = {}
        for segment in self.segments:
            found.update({f"segments/{segment.name}/{n}": c for n, c in segment.files.items()})
        for part in ((self.ann,) if self.ann is not None else ()) + self.derived:
            found.update({f"segments/{part.name}/{n}": c for n, c in part.files.items()})
        return found

    def derived_part(self, kind: str) -> DerivedInfo | None:
        return next((part for part in self.derived if part.kind == kind), None)

    def with_derived(self, part: DerivedInfo | None, kind: str) -> Commit:
        """This state with ``part`` as its derived part of ``kind`` (None: without one)."""
        kept = tuple(p for p in self.derived if p.kind != kind)
        return dataclasses.replace(self, derived=kept + ((part,) if part else ()))

    def problems(self, tombstones) -> list[str]:
        """Where the record contradicts itself or the tombstones (sorted rows): checked on
        every open, so a hand-edited or damaged record fails in one line, not in a search."""
        problems = []
        if self.count > 0 and not self.segments:
            problems.append(f"it names no segments for {self.count} papers")
        names = {segment.name for segment in self.segments}
        if self.ann is not None and not set(self.ann.covers) <= names:
            problems.append(f"its vector index covers segments it does not name: "
                            f"{sorted(set(self.ann.covers) - names)}")
        for row in tombstones[:100_000]:
            if not any(s.first_row <= row <= s.last_row for s in self.segments):
                problems.append(f"row {int(row)} is marked deleted, but no segment holds it")
                break
        held = sum(segment.count for segment in self.segments) - len(tombstones)
        if not problems and held != self.count:
            problems.append(f"it says {self.count} papers, its segments hold {held}")
        if self.segments and max(s.last_row for s in self.segments) >= self.next_row:
            problems.append("a segment holds a row at or above the next free row")
        return problems

    @property
    def folders(self) -> set[str]:
        return ({s.name for s in self.segments} | ({self.ann.name} if self.ann else set())
                | {part.name for part in self.derived})

    @property
    def uncovered(self) -> tuple[SegmentInfo, ...]:
        """Segments no vector index holds: searched exactly."""
        covered = set(self.ann.covers) if self.ann else set()
        return tuple(s for s in self.segments if s.name not in covered)


def _object(text: str, where: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise StoreError(f"{where}: damaged {what} ({error})") from None
    if not isinstance(data, dict):
        raise StoreError(f"{where}: damaged {what} (not a JSON object)")
    return data


def _build(cls, data: dict[str, Any], where: Path, what: str):
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{key: value for key, value in data.items() if key in known})
    except TypeError as error:
        raise StoreError(f"{where}: damaged {what} ({error})") from None
