"""The index folder on disk: generations, the manifest, and the SQLite document table.

This is the only module that decides where files go. Layout::

    indexes/NAME/
        CURRENT              name of the live generation, switched atomically
        .lock                held by a writer for the whole write
        gen-000003/
            manifest.json    model, dimension, metric, count, index type, file checksums
            documents.sqlite id, title, abstract, metadata; row = the vector's id in FAISS
            vectors/         the vector index (files chosen by its type, see ann.py)
            lexical/         the BM25 index (bm25s files, and the row of each of its documents)

A write builds a whole new generation beside the live one, fsyncs it, and only then points
CURRENT at it: a crash leaves the old generation live, and readers of the old one keep working.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import urllib.parse
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from semsearch import config
from semsearch.documents import Document, normalise_text
from semsearch.errors import StoreError
from semsearch.filters import Filter, facets_of

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents.sqlite"
VECTORS = "vectors"
LEXICAL = "lexical"


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    count: int
    index_type: str
    metric: str = "cosine"
    #: BM25 settings, or None for an index without lexical search
    lexical: dict[str, Any] | None = None
    #: the vector index's search parameters and the recall@10 measured for them at build time
    tuning: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    created: str = ""
    #: file name -> {"sha256": ..., "bytes": ...}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: documents added and removed by `add`/`remove` since the vector index was last trained
    changed_since_build: dict[str, int] = field(default_factory=dict)
    #: whether the documents were embedded by the int8 model (`index --quantized`)
    quantized: bool = False

    def __post_init__(self) -> None:
        # Both counts always present, whether the manifest predates them or not.
        object.__setattr__(self, "changed_since_build",
                           {"added": 0, "removed": 0, **self.changed_since_build})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            known = {f.name for f in dataclasses.fields(cls)}
            manifest = cls(**{key: value for key, value in data.items() if key in known})
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise StoreError(f"{where}: damaged manifest ({error})") from None
        if manifest.format_version > FORMAT_VERSION:
            raise StoreError(f"{where}: index format {manifest.format_version} is newer than this "
                             f"semsearch understands ({FORMAT_VERSION}); upgrade semsearch")
        return manifest


def resolve(name_or_path: str | os.PathLike | None) -> Path:
    """A bare name is a folder under the index root; anything with a slash or dot is a path.
    None is the default index ($SEMSEARCH_INDEX, else "default")."""
    text = str(name_or_path or config.default_index())
    if os.sep in text or "/" in text or text.startswith("."):
        return Path(text).expanduser()
    return config.index_root() / text


#: the only names the store ever creates or deletes in an index folder
POINTER = "CURRENT"
LOCK = ".lock"
_GENERATION = re.compile(r"gen-(\d{6,})")


class IndexFolder:
    """One index on disk: read its live generation, or write a new one."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return (self.path / POINTER).is_file()

    def is_index(self) -> bool:
        """Whether the folder holds an index, even a broken one (a pointer or a generation)."""
        return self.exists() or bool(self._generations())

    def generation(self) -> Path:
        """The live generation's folder."""
        if not self.path.exists():
            raise StoreError(f"no index at {self.path}; build one with `semsearch index PATH...`")
        if not self.path.is_dir():
            raise StoreError(f"{self.path} is a file, not an index folder")
        if not self.exists():
            if self._generations():
                raise self.broken(f"it has generations but no {POINTER} file")
            raise StoreError(f"{self.path} is not a semsearch index (no {POINTER} file)")
        name = self._live_name()
        if name is None:
            raise self.broken(f"{POINTER} does not name a generation")
        live = self.path / name
        if not live.is_dir():
            raise self.broken(f"{POINTER} names {name}, which does not exist")
        if not (live / MANIFEST).is_file():
            raise self.broken(f"the live generation {name} has no {MANIFEST}")
        return live

    def manifest(self, generation: Path | None = None) -> Manifest:
        generation = generation or self.generation()
        path = generation / MANIFEST
        try:
            return Manifest.from_json(path.read_bytes().decode("utf-8"), path)
        except (OSError, UnicodeDecodeError, StoreError) as error:
            reason = error.strerror if isinstance(error, OSError) else \
                "bytes that are not UTF-8" if isinstance(error, UnicodeDecodeError) else \
                str(error).removeprefix(f"{path}: ")
            raise self.broken(f"{path.relative_to(self.path)}: {reason}") from None

    def broken(self, reason: str) -> StoreError:
        """The error for a folder whose live state cannot be read, with the ways out."""
        where = shlex.quote(str(self.path))
        return StoreError(f"{self.path} is damaged: {reason}. `semsearch recover --index {where}` "
                          f"makes the newest intact generation live; `semsearch index PATH... "
                          f"--index {where}` rebuilds it")

    def verify(self) -> list[str]:
        """Check every file of the live generation against the manifest's checksums."""
        live = self.generation()
        return damaged_files(live, self.manifest(live))

    def recover(self) -> str:
        """Make the newest intact generation live (none newer than the one the pointer
        named, whose writes never committed); its name."""
        with _locked(self._lock_path()):
            named = self._live_name()
            limit = _generation_number(named) if named else None
            for candidate in sorted(self._generations(), key=lambda p: _generation_number(p.name),
                                    reverse=True):
                if limit is not None and _generation_number(candidate.name) > limit:
                    continue
                try:
                    if damaged_files(candidate, self.manifest(candidate)):
                        continue
                except StoreError:
                    continue
                if candidate.name != named:
                    _write_durably(self.path / POINTER, candidate.name + "\n")
                return candidate.name
        where = shlex.quote(str(self.path))
        raise StoreError(f"{self.path} holds no intact generation to recover; rebuild it with "
                         f"`semsearch index PATH... --index {where}`")

    @contextmanager
    def new_generation(self, *, update: bool = False,
                       force: bool = False) -> Iterator[GenerationWriter]:
        """A folder to build the next generation in; live only if ``commit`` is called.

        ``update``: the new generation starts from the live one (``writer.base``), pinned and
        checked under the writer lock, so a write always builds on the latest state and never
        on damage. ``force``: build in a folder that holds other things (only the store's own
        names are ever written or deleted there).
        """
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path} is a file, not an index folder")
        created_folder = not self.path.exists()
        if not (created_folder or update or force or self.is_index()) and \
                any(self.path.iterdir()):
            raise StoreError(f"{self.path} is not empty and is not a semsearch index; nothing "
                             "was written. Choose a new or empty folder, or pass --force to build "
                             "the index inside it (only its CURRENT, .lock and gen-NNNNNN "
                             "entries are ever written or deleted)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create the index folder "
                             f"({error.strerror})") from None
        with _locked(self._lock_path()):
            base = Snapshot.pin(self, verified=True) if update else None
            previous = self._live_name()
            numbers = [_generation_number(p.name) for p in self._generations()]
            number = 1 + max(numbers + [_generation_number(previous) if previous else 0])
            staging = self.path / f"gen-{number:06d}"
            writer = None
            try:
                staging.mkdir()
                if base is not None:
                    shutil.copyfile(base.locate(DOCUMENTS), staging / DOCUMENTS)
                writer = GenerationWriter(self, staging, base)
                yield writer
            except (OSError, sqlite3.Error) as error:
                raise _write_failed(self.path, error) from None
            finally:
                if writer is not None:
                    writer.discard()
                if base is not None:
                    base.close()
                # A write is committed the moment the pointer names it, whatever happens
                # after: the generation the pointer names is never deleted.
                if self._live_name() != staging.name:
                    shutil.rmtree(staging, ignore_errors=True)
                    (self.path / (POINTER + ".tmp")).unlink(missing_ok=True)
                    if created_folder and not self.is_index():
                        shutil.rmtree(self.path, ignore_errors=True)
            self._drop_generations(keep={staging.name, previous})

    def _lock_path(self) -> Path:
        if not self.path.is_dir():
            self.generation()  # says what is there instead
        return self.path / LOCK

    def _live_name(self) -> str | None:
        """The generation the pointer names, or None where it names none (any reason)."""
        try:
            text = (self.path / POINTER).read_bytes().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if _GENERATION.fullmatch(text) else None

    def _generations(self) -> list[Path]:
        """The generation folders the store made (gen- and six or more digits), no others."""
        try:
            return [p for p in self.path.iterdir() if _GENERATION.fullmatch(p.name) and p.is_dir()]
        except OSError:
            return []

    def _drop_generations(self, keep: set[str | None]) -> None:
        """Remove superseded generations and leftovers of crashed writes.

        The one live before this write stays, so a reader that opened it keeps working.
        """
        for path in self._generations():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


class Snapshot:
    """One committed generation, pinned: its manifest, and every file of it held open.

    A write deletes generations two writes old, so a reader that opened one long ago would
    lose files it had not read yet. Holding each file open keeps it readable (the kernel keeps
    a deleted file while it is open): whatever this snapshot reads later, it reads from the
    generation it pinned, however many writes came since.
    """

    def __init__(self, path: Path, manifest: Manifest, handles: dict[str, int]):
        self.path = path
        self.manifest = manifest
        self._handles = handles
        # SQLite resolves a path through its links, so it could not open the table through
        # its handle once the folder is deleted: the table is opened now (a page's read).
        self.documents = DocumentTable.open_read_only(path / DOCUMENTS)
        self._closer = weakref.finalize(self, _close_all, handles, self.documents)

    @classmethod
    def pin(cls, folder: IndexFolder, verified: bool = False) -> Snapshot:
        """The live generation, its files checked (on their stamps, or ``verified``: every
        byte against its checksum, as a write does before building on it) and held open."""
        for _ in range(5):
            generation = folder.generation()
            manifest = folder.manifest(generation)
            handles: dict[str, int] = {}
            try:
                for name in manifest.files:
                    handles[name] = os.open(generation / name, os.O_RDONLY)
            except FileNotFoundError:
                _close_all(handles)
                if folder._live_name() != generation.name:
                    continue  # a write replaced it meanwhile: pin the new one
            else:
                try:
                    if verified:
                        if problems := damaged_files(generation, manifest):
                            raise StoreError(f"{problems[0]}: the file is damaged, so nothing was "
                                             f"written; {_DAMAGE_ADVICE}")
                    else:
                        check_files(generation, manifest)
                    return cls(generation, manifest, handles)
                except BaseException:
                    _close_all(handles)
                    raise
            check_files(generation, manifest)  # names what is missing
        raise StoreError(f"{folder.path} is being rewritten too often to open; try again")

    @property
    def name(self) -> str:
        return self.path.name

    def locate(self, name: str) -> Path:
        """A path that reads this snapshot's file ``name``, even after the folder was deleted."""
        handle = self._handles.get(name)
        if handle is None:
            raise StoreError(f"{self.path / name}: not in this index's manifest")
        path = self.path / name
        try:
            held, now = os.fstat(handle), path.stat()
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                return path
        except OSError:
            pass
        return Path(f"/proc/self/fd/{handle}")

    def has(self, name: str) -> bool:
        return name in self._handles

    def part(self, folder: str) -> PartFiles:
        return PartFiles(self, folder)

    def close(self) -> None:
        self._closer()


@dataclass(frozen=True)
class PartFiles:
    """The files of one part of a snapshot (its vector index, its BM25 index), by name."""

    snapshot: Snapshot
    folder: str

    def path(self, name: str) -> Path:
        return self.snapshot.locate(f"{self.folder}/{name}")

    def has(self, name: str) -> bool:
        return self.snapshot.has(f"{self.folder}/{name}")

    def shown(self, name: str = "") -> Path:
        """The file's name in the index folder, for messages."""
        return self.snapshot.path / self.folder / name if name else self.snapshot.path / self.folder


@dataclass(frozen=True)
class FolderFiles:
    """The files of a part in a plain folder, read as ``PartFiles`` reads a snapshot's."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def has(self, name: str) -> bool:
        return (self.folder / name).is_file()

    def shown(self, name: str = "") -> Path:
        return self.folder / name if name else self.folder


def _close_all(handles: dict[str, int], documents: DocumentTable | None = None) -> None:
    if documents is not None:
        documents.close()
    for handle in handles.values():
        try:
            os.close(handle)
        except OSError:
            pass
    handles.clear()


_DAMAGE_ADVICE = "run `semsearch verify`, then `semsearch recover` or rebuild the index"


def _write_failed(path: Path, error: Exception) -> StoreError:
    """One line for a write that the disk or the file system refused; nothing was changed.

    Not every library says why a write failed (numpy and FAISS report short writes, SQLite
    "disk is full" for any reason), so a disk found full is named as the reason."""
    code = getattr(error, "errno", None)
    try:
        status = os.statvfs(path)
        full = status.f_bavail * status.f_frsize < (1 << 20)
    except OSError:
        full = False
    if code == errno.ENOSPC or full:
        reason = "no space left on the device"
    elif isinstance(error, OSError) and error.strerror:
        reason = error.strerror.lower()
    else:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
    return StoreError(f"{path}: cannot write the index: {reason}; nothing was changed")


@contextmanager
def scratch_table() -> Iterator[DocumentTable]:
    """A throwaway document table, for applying the duplicate rules without writing an index."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="semsearch-") as folder:
        table = DocumentTable.create(Path(folder) / DOCUMENTS, keep_text=False)
        try:
            yield table
        finally:
            table.close()


class GenerationWriter:
    """The files of a generation being built; ``base`` is the snapshot an update starts from."""

    def __init__(self, folder: IndexFolder, path: Path, base: Snapshot | None = None):
        self.folder = folder
        self.path = path
        self.base = base
        self.documents = (DocumentTable.create if base is None else DocumentTable.open_for_update)(
            path / DOCUMENTS)
        self.committed = False

    @property
    def vectors_path(self) -> Path:
        path = self.path / VECTORS
        path.mkdir(exist_ok=True)
        return path

    @property
    def lexical_path(self) -> Path:
        return self.path / LEXICAL

    def commit(self, manifest: Manifest) -> Manifest:
        """Seal the files, record their checksums, and make this generation the live one."""
        self.documents.close()
        names = sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file())
        files = {name: file_checksum(self.path / name) for name in names}
        manifest = dataclasses.replace(manifest, files=files,
                                       created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _write_durably(self.path / MANIFEST, manifest.to_json())
        for name in files:
            _fsync_file(self.path / name)
        for folder in {(self.path / name).parent for name in files}:
            _fsync_dir(folder)
        _record_checked(self.path, files)
        pointer = self.folder.path / POINTER
        temporary = pointer.with_name(POINTER + ".tmp")
        _write_synced(temporary, self.path.name + "\n")
        os.replace(temporary, pointer)  # the commit point
        self.committed = True
        try:
            _fsync_dir(self.folder.path)
        except OSError as error:
            raise StoreError(f"{self.folder.path}: the change is committed, but syncing the "
                             f"folder failed ({error.strerror}); it may not survive a power "
                             f"failure") from None
        return manifest

    def discard(self) -> None:
        """Let go of the files without saving anything (after commit, or after a failure)."""
        self.documents.discard()


_PLURALS = {"category": "categories", "author": "authors", "tag": "tags"}


class DocumentTable:
    """Documents by row; the row is the vector's id in the vector index."""

    SCHEMA = """
        CREATE TABLE documents (
            row INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            abstract TEXT NOT NULL,
            metadata TEXT NOT NULL,
            title_key TEXT NOT NULL,
            content_key TEXT NOT NULL
        );
        CREATE INDEX documents_title_key ON documents (title_key);
        CREATE UNIQUE INDEX documents_content_key ON documents (content_key);
    """ + """
        CREATE TABLE IF NOT EXISTS facets (
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            row INTEGER NOT NULL,
            shown TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS facets_lookup ON facets (kind, value);
        CREATE INDEX IF NOT EXISTS facets_row ON facets (row);
    """
    #: the facet table alone, for tables written before filters existed (see open_for_update)
    FACETS = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS facets"):]

    def __init__(self, connection: sqlite3.Connection, path: Path, keep_text: bool = True):
        self._db: sqlite3.Connection | None = connection
        self.path = path
        #: False for a table that only applies the duplicate rules (a dry run): ids and keys
        self.keep_text = keep_text

    #: The generation is not live until committed and fsynced, so SQLite's own journal
    #: would only slow the build down. A 256 MiB page cache keeps the id and duplicate-key
    #: indexes of a multi-million-record input in memory (bounded, unlike Python dicts).
    WRITING = "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"

    @classmethod
    def create(cls, path: Path, keep_text: bool = True) -> DocumentTable:
        db = sqlite3.connect(path)
        db.executescript(cls.WRITING + cls.SCHEMA)
        return cls(db, path, keep_text)

    @classmethod
    def open_for_update(cls, path: Path) -> DocumentTable:
        """A copy of a committed table, in a generation being written."""
        db = sqlite3.connect(path)
        db.executescript(cls.WRITING)
        table = cls(db, path)
        if not table.has_current_facets():  # written by an older semsearch: derive them again
            table.refresh_facets()
        return table

    def has_current_facets(self) -> bool:
        """Whether the facet table is there, with the keys this version of filters expects."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(facets)")}
        return "shown" in columns

    def refresh_facets(self) -> None:
        """Derive every document's facets again from its metadata."""
        self._db.executescript("DROP TABLE IF EXISTS facets;" + self.FACETS)
        for batch in self.batches(10_000):
            for row, document in batch:
                self._set_facets(row, document.metadata)

    def _set_facets(self, row: int, metadata: dict[str, Any], replace: bool = False) -> None:
        if replace:
            self._db.execute("DELETE FROM facets WHERE row = ?", (row,))
        self._db.executemany("INSERT INTO facets (kind, value, row, shown) VALUES (?, ?, ?, ?)",
                             [(kind, key, row, shown) for kind, key, shown in facets_of(metadata)])

    def rows_matching(self, where: Filter) -> np.ndarray:
        """Sorted rows of the documents that pass the filter."""
        self._require_facets()
        queries, values = [], []
        if where.years:
            first, last = where.years
            queries.append("SELECT row FROM facets WHERE kind = 'year' AND value BETWEEN ? AND ?")
            values += [f"{first or 0:04d}", f"{last or 9999:04d}"]
        for group in where.parts():
            alternatives = [self._part_query(part) for part in group]
            queries.append(" UNION ".join(query for query, _ in alternatives))
            values += [value for _, part_values in alternatives for value in part_values]
        query = " INTERSECT ".join(f"SELECT * FROM ({q})" for q in queries) + " ORDER BY row"
        return np.array([row for (row,) in self._db.execute(query, values)], dtype=np.int64)

    def why_nothing_matches(self, where: Filter) -> str:
        """What to tell a user whose filter lets no paper through: which part matches nothing,
        with the closest values there are, or that the parts only fail together."""
        self._require_facets()
        if where.years and not len(self.rows_matching(Filter(years=where.years))):
            first, last = where.years
            known = [int(y) for (y,) in self._db.execute(
                "SELECT DISTINCT value FROM facets WHERE kind = 'year' ORDER BY value")]
            span = f"; the papers' years run from {known[0]} to {known[-1]}" if known else \
                "; no paper has a year"
            asked = str(first) if first == last else f"{first or ''}..{last or ''}"
            return f"matches --year {asked}{span}"
        for group in where.parts():
            for part in group:
                query, values = self._part_query(part)
                if self._db.execute(query + " LIMIT 1", values).fetchone() is None:
                    closest = self._closest_shown(part)
                    hint = f"; closest {_PLURALS[part.kind]}: " + ", ".join(
                        repr(c) for c in closest) if closest else ""
                    return f"matches {part.flag}{hint}"
        return "matches all of these filters together (each part matches some papers)"

    @staticmethod
    def _part_query(part) -> tuple[str, list[str]]:
        conditions, values = [], [part.kind]
        for pattern in part.patterns:
            conditions.append("value = ?")
            values.append(pattern.key)
            if pattern.prefix:
                conditions.append("(value >= ? AND value < ?)")
                values += [pattern.key + ".", pattern.key + "/"]  # "/" sorts right after "."
        return (f"SELECT row FROM facets WHERE kind = ? AND ({' OR '.join(conditions)})",
                values)

    def _closest_shown(self, part, limit: int = 3) -> list[str]:
        """Values of the part's kind spelled most like what was typed, as the source wrote
        them: among keys sharing the typed key's first letters (an indexed range), so the
        cost stays small however many authors the collection has."""
        import difflib

        typed = part.patterns[0].key if part.patterns else ""
        if part.kind == "author":
            typed = typed.split()[-1] if typed else ""
        for width in (3, 1, 0):
            start = typed[:width]
            found = self._db.execute(
                "SELECT value, shown FROM facets WHERE kind = ? AND value >= ? AND value < ? "
                "LIMIT 5000", (part.kind, start, start + "\uffff")).fetchall()
            if found:
                break
        by_key: dict[str, str] = {}
        for key, shown in found:
            by_key.setdefault(key, shown)
        ranked = difflib.get_close_matches(typed, list(by_key), n=limit * 3, cutoff=0.5)
        shown: list[str] = []
        for key in ranked:
            if by_key[key] not in shown:
                shown.append(by_key[key])
        return shown[:limit]

    def _require_facets(self) -> None:
        if not self.has_current_facets():
            raise StoreError(f"{self.path} was built by an older semsearch, whose filters "
                             f"worked otherwise; run `semsearch reindex` once to filter it")

    @classmethod
    def open_read_only(cls, path: Path) -> DocumentTable:
        # A committed generation never changes, so SQLite may skip locking entirely.
        try:
            db = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro&immutable=1",
                                 uri=True)
            # Memory-mapped reads (SQLite caps the size, 2 GB in common builds). A page once
            # read stays mapped while the table is open, and a missing page comes in with its
            # neighbours; read() brings in one page and leaves it unmapped, where a kernel that
            # reclaims cold page cache (Linux with DAMON, as on our benchmark machine) may evict
            # it within a minute. Warm 1M engine: fetching 10 hits 0.28 against 0.9 ms.
            db.execute(f"PRAGMA mmap_size = {path.stat().st_size}")
            # Reads the schema and one page: a file that is no document table fails here.
            # (Counting the rows read the whole table: 22 ms at 1M with the file cached, 1 s not.)
            db.execute("SELECT row FROM documents LIMIT 1").fetchone()
        except (sqlite3.DatabaseError, OSError) as error:
            raise StoreError(f"{path}: cannot read the document table ({error})") from None
        return cls(db, path)

    def close(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._db.close()
            self._db = None

    def discard(self) -> None:
        """Close without committing what was not committed (a write that failed)."""
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def stage(self, document: Document) -> tuple[str, int]:
        """Store one document, applying the duplicate rules; returns (outcome, row).

        Outcomes: "new"; "duplicate" (same id, or same title and abstract, already stored:
        nothing changes); "replaced" (same id, new text: the last one read wins).
        """
        title_key, content_key = document.duplicate_keys
        if self.keep_text:
            title, abstract, metadata = document.title, document.abstract, _dump(document.metadata)
        else:
            title = abstract = metadata = ""
        # The common case, a new document, takes one statement; both keys are unique.
        cursor = self._db.execute(
            "INSERT INTO documents (id, title, abstract, metadata, title_key, content_key) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (document.id, title, abstract, metadata, title_key, content_key))
        if cursor.rowcount == 1:
            if self.keep_text:
                self._set_facets(cursor.lastrowid, document.metadata)
            return "new", int(cursor.lastrowid)
        found = self._db.execute("SELECT row, content_key FROM documents WHERE id = ?",
                                 (document.id,)).fetchone()
        if found is None or found[1] == content_key:
            same = found or self._db.execute("SELECT row FROM documents WHERE content_key = ?",
                                             (content_key,)).fetchone()
            return "duplicate", same[0]
        if self._db.execute("SELECT 1 FROM documents WHERE content_key = ?",
                            (content_key,)).fetchone():
            return "duplicate", found[0]  # its new text is already stored under another id
        self._db.execute(
            "UPDATE documents SET title = ?, abstract = ?, metadata = ?, title_key = ?, "
            "content_key = ? WHERE row = ?",
            (title, abstract, metadata, title_key, content_key, found[0]))
        if self.keep_text:
            self._set_facets(found[0], document.metadata, replace=True)
        return "replaced", found[0]

    def upsert(self, document: Document, row: int) -> tuple[str, int | None]:
        """Store one document of an update under ``row`` if its text is new; returns
        (outcome, the row it replaced).

        Outcomes: "new"; "updated" (same id, new title or abstract: the old row is deleted and
        the document takes ``row``, to be embedded again); "unchanged" (same id and text: only
        its metadata is refreshed, nothing to embed); "duplicate" (its text is stored under
        another id: nothing changes).
        """
        title_key, content_key = document.duplicate_keys
        metadata = _dump(document.metadata)
        found = self._db.execute("SELECT row, content_key, metadata FROM documents WHERE id = ?",
                                 (document.id,)).fetchone()
        if found is not None and found[1] == content_key:
            if found[2] != metadata:
                self._db.execute("UPDATE documents SET metadata = ? WHERE row = ?",
                                 (metadata, found[0]))
                self._set_facets(found[0], document.metadata, replace=True)
            return "unchanged", None
        if self._db.execute("SELECT 1 FROM documents WHERE content_key = ?",
                            (content_key,)).fetchone():
            return "duplicate", None
        if found is not None:
            self._remove_row(found[0])
        self._db.execute(
            "INSERT INTO documents (row, id, title, abstract, metadata, title_key, content_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row, document.id, document.title, document.abstract, metadata, title_key,
             content_key))
        self._set_facets(row, document.metadata)
        return ("updated", found[0]) if found is not None else ("new", None)

    def delete(self, doc_id: str) -> int | None:
        """Remove a document by id; its row, or None if there was none."""
        row = self.row_of_id(doc_id)
        if row is not None:
            self._remove_row(row)
        return row

    def _remove_row(self, row: int) -> None:
        self._db.execute("DELETE FROM documents WHERE row = ?", (row,))
        self._db.execute("DELETE FROM facets WHERE row = ?", (row,))

    @property
    def modified(self) -> bool:
        """Whether anything was written since the table was opened."""
        return self._db.total_changes > 0

    def batches_of_rows(self, rows: list[int], size: int) -> Iterator[list[tuple[int, Document]]]:
        """(row, document) for the given rows, in their order, ``size`` at a time."""
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            found = self.by_rows(chunk)
            yield [(row, found[row]) for row in chunk]

    def highest_row(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(row), 0) FROM documents").fetchone()[0])

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def batches(self, size: int) -> Iterator[list[tuple[int, Document]]]:
        """Every (row, document) in row order, ``size`` at a time, without loading them all."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT row, id, title, abstract, metadata FROM documents WHERE row > ? "
                "ORDER BY row LIMIT ?", (last, size)).fetchall()
            if not rows:
                return
            yield [(row[0], _document(row[1:])) for row in rows]
            last = rows[-1][0]

    def by_rows(self, rows: Iterable[int]) -> dict[int, Document]:
        wanted = [int(row) for row in rows]
        if not wanted:
            return {}
        # Padded to a power of two, so the few statement texts a search uses stay compiled in
        # the connection's statement cache instead of being parsed again for each k.
        size = 1 << (len(wanted) - 1).bit_length()
        marks = ",".join("?" * size)
        found = self._db.execute(
            f"SELECT row, id, title, abstract, metadata FROM documents WHERE row IN ({marks})",
            wanted + [-1] * (size - len(wanted))).fetchall()
        return {row[0]: _document(row[1:]) for row in found}

    def random_rows(self, count: int, rng: np.random.Generator) -> list[int]:
        """Up to ``count`` rows picked at random, without reading the documents."""
        rows = np.array([row for (row,) in self._db.execute("SELECT row FROM documents")])
        return rng.choice(rows, min(count, len(rows)), replace=False).tolist()

    def row_of_id(self, doc_id: str) -> int | None:
        found = self._db.execute("SELECT row FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return found[0] if found else None

    def rows_of_title(self, title: str) -> list[int]:
        """Rows whose title matches, ignoring case, spacing and punctuation."""
        found = self._db.execute("SELECT row FROM documents WHERE title_key = ? ORDER BY row",
                                 (normalise_text(title),)).fetchall()
        return [row[0] for row in found]

    def rows_of_title_start(self, start: str) -> list[int]:
        """Rows whose title begins with ``start`` and then a word break, ignoring case and
        punctuation (a short name: "MM-Embed" for "MM-Embed: Universal ...")."""
        key = normalise_text(start)
        if not key:
            return []
        # " " sorts just below "!": the range is every key that starts with key and a space
        found = self._db.execute("SELECT row FROM documents WHERE title_key >= ? AND "
                                 "title_key < ? ORDER BY row LIMIT 100",
                                 (key + " ", key + "!")).fetchall()
        return [row[0] for row in found]

    def count_without_abstract(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents WHERE abstract = ''")
                   .fetchone()[0])

    def titles(self) -> Iterator[str]:
        for (title,) in self._db.execute("SELECT title FROM documents"):
            yield title


def file_checksum(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def damaged_files(generation: Path, manifest: Manifest) -> list[str]:
    """Every file of a generation whose size or sha256 differs from the manifest, with why."""
    problems = []
    for name, expected in sorted(manifest.files.items()):
        path = generation / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif problem := _mismatch(path, expected, path.stat()):
            problems.append(f"{path}: {problem}")
    return problems


def check_files(generation: Path, manifest: Manifest) -> None:
    """The check on every open: a missing, truncated or altered file is named, not misread.

    Hashing every file on every open would cost a one-shot query more than the query itself,
    so a file is hashed only when its size, modification time or inode differ from when it
    was last found intact (recorded in CHECKED beside the manifest, first at commit). Any
    write to a file changes its modification time; `semsearch verify` re-hashes everything,
    for damage that did not come through a write.
    """
    checked = _read_checked(generation)
    passed = []
    for name, expected in manifest.files.items():
        path = generation / name
        try:
            status = path.stat()
        except FileNotFoundError:
            raise StoreError(f"{path}: missing from the index") from None
        if status.st_size == expected.get("bytes") and checked.get(name) == _stamp(status):
            continue
        if problem := _mismatch(path, expected, status):
            advice = "rebuild the index or restore this file"
            raise StoreError(f"{path}: {problem}: the file is damaged; {advice}")
        passed.append(name)
    if passed:
        _record_checked(generation, passed, checked)


def _mismatch(path: Path, expected: dict[str, Any], status: os.stat_result) -> str | None:
    """How a file differs from what the manifest recorded (size first, then sha256), if it does."""
    if status.st_size != expected.get("bytes"):
        return f"size {status.st_size} bytes, the manifest says {expected.get('bytes')}"
    if file_checksum(path)["sha256"] != expected.get("sha256"):
        return "contents differ from the manifest's checksum"
    return None


CHECKED = ".checked.json"


def _stamp(status: os.stat_result) -> list[int]:
    return [status.st_size, status.st_mtime_ns, status.st_ino]


def _read_checked(generation: Path) -> dict[str, list[int]]:
    try:
        return json.loads((generation / CHECKED).read_text())
    except (OSError, ValueError):
        return {}


def _record_checked(generation: Path, names, already: dict | None = None) -> None:
    """Remember which files were found intact, so the next open need not hash them again.

    Best effort: in a read-only index folder every open hashes what it cannot record.
    """
    stamps = dict(already or {})
    for name in names:
        stamps[name] = _stamp((generation / name).stat())
    temporary = generation / f"{CHECKED}.{os.getpid()}.tmp"
    try:
        temporary.write_text(json.dumps(stamps))
        os.replace(temporary, generation / CHECKED)
    except OSError:
        temporary.unlink(missing_ok=True)


def _document(columns: tuple) -> Document:
    doc_id, title, abstract, metadata = columns
    return Document(id=doc_id, title=title, abstract=abstract, metadata=orjson.loads(metadata))


def _dump(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


def _generation_number(name: str) -> int:
    match = _GENERATION.fullmatch(name)
    return int(match.group(1)) if match else 0


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        handle = path.open("a")
    except OSError as error:
        raise StoreError(f"{path}: cannot take the writer lock ({error.strerror}); is the index "
                         f"folder writable?") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{path.parent} is being written by another process") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_synced(path: Path, text: str) -> None:
    with path.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _write_durably(path: Path, text: str) -> None:
    """Write to a temporary name, fsync, then rename over ``path``: all or nothing."""
    temporary = path.with_name(path.name + ".tmp")
    _write_synced(temporary, text)
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
