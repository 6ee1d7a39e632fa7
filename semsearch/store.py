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
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.documents import Document, normalise_text
from semsearch.errors import StoreError
from semsearch.filters import Filter, facets_of

FORMAT_VERSION = 1
ROOT_VARIABLE = "SEMSEARCH_INDEX_ROOT"
DEFAULT_NAME = "default"
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
            known = {f.name for f in dataclasses.fields(cls)}
            manifest = cls(**{key: value for key, value in data.items() if key in known})
        except (json.JSONDecodeError, TypeError) as error:
            raise StoreError(f"{where}: damaged manifest ({error})") from None
        if manifest.format_version > FORMAT_VERSION:
            raise StoreError(f"{where}: index format {manifest.format_version} is newer than this "
                             f"semsearch understands ({FORMAT_VERSION}); upgrade semsearch")
        return manifest


def index_root() -> Path:
    """Where index names live: $SEMSEARCH_INDEX_ROOT, else ./indexes."""
    return Path(os.environ.get(ROOT_VARIABLE) or "indexes")


def resolve(name_or_path: str | os.PathLike | None) -> Path:
    """A bare name is a folder under the index root; anything with a slash or dot is a path."""
    text = str(name_or_path or DEFAULT_NAME)
    if os.sep in text or "/" in text or text.startswith("."):
        return Path(text).expanduser()
    return index_root() / text


class IndexFolder:
    """One index on disk: read its live generation, or write a new one."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return (self.path / "CURRENT").is_file()

    def generation(self) -> Path:
        """The live generation's folder."""
        pointer = self.path / "CURRENT"
        if not pointer.is_file():
            if self.path.exists():
                raise StoreError(f"{self.path} is not a semsearch index (no CURRENT file)")
            raise StoreError(f"no index at {self.path}; build one with `semsearch index PATH...`")
        live = self.path / pointer.read_text().strip()
        if not (live / MANIFEST).is_file():
            raise StoreError(f"{live}: the live generation has no {MANIFEST}")
        return live

    def manifest(self, generation: Path | None = None) -> Manifest:
        path = (generation or self.generation()) / MANIFEST
        return Manifest.from_json(path.read_text(), path)

    def verify(self) -> list[str]:
        """Check every file of the live generation against the manifest's checksums."""
        live = self.generation()
        return damaged_files(live, self.manifest(live))

    @staticmethod
    def open_documents(generation: Path, manifest: Manifest) -> DocumentTable:
        """The document table of one generation, once its files are checked (see ``check_files``)."""
        check_files(generation, manifest)
        return DocumentTable.open_read_only(generation / DOCUMENTS)

    @staticmethod
    def vectors_path(generation: Path) -> Path:
        return generation / VECTORS

    @staticmethod
    def lexical_path(generation: Path) -> Path:
        return generation / LEXICAL

    @contextmanager
    def new_generation(self, update_of: Path | None = None) -> Iterator[GenerationWriter]:
        """A folder to build the next generation in; live only if ``commit`` is called.

        ``update_of``: a generation whose document table the new one starts from (for add and
        remove); it must still be the live one once the writer lock is held, so two writers
        never both build on the same state and lose one's change.
        """
        created_folder = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        with _locked(self.path / ".lock"):
            previous = self.generation().name if self.exists() else None
            if update_of is not None and update_of.name != previous:
                raise StoreError(f"{self.path} changed while this update was being prepared; "
                                 f"run it again")
            number = 1 + max((_generation_number(p) for p in self.path.glob("gen-*")), default=0)
            staging = self.path / f"gen-{number:06d}"
            staging.mkdir()
            if update_of is not None:
                shutil.copyfile(update_of / DOCUMENTS, staging / DOCUMENTS)
            writer = GenerationWriter(self, staging, fresh=update_of is None)
            try:
                yield writer
            finally:
                writer.close()
                if not writer.committed:
                    shutil.rmtree(staging, ignore_errors=True)
                    if created_folder and not self.exists():
                        shutil.rmtree(self.path, ignore_errors=True)
            if writer.committed:
                self._drop_generations(keep={staging.name, previous})

    def _drop_generations(self, keep: set[str | None]) -> None:
        """Remove superseded generations and leftovers of crashed writes.

        The one live before this write stays, so a reader that opened it keeps working.
        """
        for path in self.path.glob("gen-*"):
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


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
    """The files of a generation being built."""

    def __init__(self, folder: IndexFolder, path: Path, fresh: bool = True):
        self.folder = folder
        self.path = path
        self.documents = (DocumentTable.create if fresh else DocumentTable.open_for_update)(
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
        _write_durably(self.folder.path / "CURRENT", self.path.name + "\n")
        self.committed = True
        return manifest

    def close(self) -> None:
        self.documents.close()


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
            row INTEGER NOT NULL
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
        if not table.has_facets():  # written before filters existed: add them now
            db.executescript(cls.FACETS)
            for batch in table.batches(10_000):
                for row, document in batch:
                    table._set_facets(row, document.metadata)
        return table

    def has_facets(self) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'facets'").fetchone() \
            is not None

    def _set_facets(self, row: int, metadata: dict[str, Any], replace: bool = False) -> None:
        if replace:
            self._db.execute("DELETE FROM facets WHERE row = ?", (row,))
        self._db.executemany("INSERT INTO facets (kind, value, row) VALUES (?, ?, ?)",
                             [(kind, value, row) for kind, value in facets_of(metadata)])

    def rows_matching(self, where: Filter) -> np.ndarray:
        """Sorted rows of the documents that pass the filter."""
        if not self.has_facets():
            raise StoreError(f"{self.path} was built before filters existed; run "
                             f"`semsearch reindex` once to filter it")
        parts, values = [], []
        for kind, comparison, arguments in where.conditions():
            parts.append(f"SELECT row FROM facets WHERE kind = ? AND {comparison}")
            values += [kind, *arguments]
        query = " INTERSECT ".join(parts) + " ORDER BY row"
        return np.array([row for (row,) in self._db.execute(query, values)], dtype=np.int64)

    @classmethod
    def open_read_only(cls, path: Path) -> DocumentTable:
        # A committed generation never changes, so SQLite may skip locking entirely.
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
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
        marks = ",".join("?" * len(wanted))
        found = self._db.execute(
            f"SELECT row, id, title, abstract, metadata FROM documents WHERE row IN ({marks})",
            wanted).fetchall()
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
    return Document(id=doc_id, title=title, abstract=abstract, metadata=json.loads(metadata))


def _dump(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


def _generation_number(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[1])
    except (IndexError, ValueError):
        return 0


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{path.parent} is being written by another process") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_durably(path: Path, text: str) -> None:
    """Write to a temporary name, fsync, then rename over ``path``: all or nothing."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
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
