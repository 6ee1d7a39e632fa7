"""The index folder on disk: generations, the writer lock, commits, and pinned snapshots.

This is the only module that decides where files go. Layout::

    indexes/NAME/
        CURRENT                  name of the live generation, switched atomically
        .lock                    held by a writer for the whole write
        reader.sqlite            the reader's tags and papers seen (semsearch.reading.state):
                                 beside the generations, so no write or rebuild touches it
        gen-000003/
            manifest.json        model, dimension, BM25 settings: fixed for the generation
            documents.sqlite     papers, facets, tombstones, commit records (WAL mode)
            segments/
                seg-000001/      rows, float vectors and BM25 postings of a build or an add
                ann-000002/      a trained vector index over some segments' rows
            .checked.json        size, mtime and inode of each file when last found intact
            embedded.json        (a build not yet live) how many of its vectors are durable,
                                 with a checksum of each stretch written between checkpoints
            pending-add/         vectors an interrupted add embedded, for the next add

A full build (`semsearch index`, `upgrade`) writes a new generation and switches CURRENT to
it. A build interrupted after embedding part of its papers leaves its generation behind,
unfinished (no manifest), for the next build to take those vectors from. Every other write
happens inside the live generation: new segment files are written and fsynced, then one
SQLite transaction records the new state (papers, tombstones, and a commit record naming the
live segments). That transaction's commit is the commit of the write: a crash before it
leaves the state before, and files no commit names are removed by the next write. A reader
holds a read transaction and every file of the state it read open, so it keeps that state
across any number of later writes, merges and builds.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import _fs, config
from semsearch.errors import StoreError
from semsearch.store import documents as documents_module
from semsearch.store.documents import DocumentTable
from semsearch.store.records import FORMAT_VERSION, Commit, Manifest

POINTER = "CURRENT"
#: where this process's open files can be opened again by descriptor (Linux; /dev/fd elsewhere)
_DESCRIPTORS = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
LOCK = ".lock"
#: the reader's tags, seen papers and saved searches (``reading.state``): beside the
#: generations, so no build, rebuild or write of the index touches it
READER = "reader.sqlite"
MANIFEST = "manifest.json"
SEGMENTS = "segments"
CHECKED = ".checked.json"
EMBEDDED = "embedded.json"
#: vectors an add embedded before it was interrupted (see ``store.pending``)
PENDING = "pending-add"
_GENERATION = re.compile(r"gen-(\d{6,})")
#: commits whose files a write keeps (readers of older ones hold their files open)
KEEP_COMMITS = 2
#: the longest name a folder of a path may have (Linux and macOS file systems)
MAX_NAME_BYTES = 255
_DAMAGE_ADVICE = "run `semsearch verify`, then `semsearch recover` or rebuild the index"


def resolve(name_or_path: str | os.PathLike | None) -> Path:
    """A bare name is a folder under the index root; anything with a slash or dot is a path.
    None is the default index ($SEMSEARCH_INDEX, else "default")."""
    text = str(name_or_path or config.default_index())
    if os.sep in text or "/" in text or text.startswith("."):
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # "~someone/x" for a user this machine does not know
            raise StoreError(f"{text}: no home folder for {text.split('/')[0]!r} on this "
                             f"machine; give the index's path") from None
    else:
        path = config.index_root() / text
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > MAX_NAME_BYTES:
        raise StoreError(f"{str(path)[:60]}...: a folder name of {longest} bytes; the file "
                         f"system takes at most {MAX_NAME_BYTES}")
    return path


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class IndexFolder:
    """One index on disk: find its live generation, write a new one, or write inside it."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return (self.path / POINTER).is_file()

    @property
    def reader_path(self) -> Path:
        """Where the reader's state of this index is kept."""
        return self.path / READER

    def change_stamp(self, generation: Path) -> tuple:
        """Identity, size and time of change of the files a commit to ``generation`` writes:
        equal stamps mean no commit came between them."""
        stamp = []
        for path in (self.path / POINTER, generation / documents_module.FILE,
                     generation / (documents_module.FILE + "-wal")):
            try:
                found = path.stat()
                stamp.append((found.st_ino, found.st_size, found.st_mtime_ns))
            except FileNotFoundError:
                stamp.append(None)
        return tuple(stamp)

    def committed_state(self) -> tuple[str | None, int | None]:
        """(live generation, number of its latest commit), None where there is none: any
        commit changes it."""
        name = self._live_name()
        try:
            return name, (_latest_number(self.path / name) if name else None)
        except (StoreError, sqlite3.Error):  # no commits to read (an index of format 1)
            return name, None

    def is_index(self) -> bool:
        """Whether the folder holds an index, even a broken one (a pointer or a generation)."""
        return self.exists() or bool(self._generations())

    # -- reading the live state -----------------------------------------------------------

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
            manifest = Manifest.from_json(path.read_bytes().decode("utf-8"), path)
        except (OSError, UnicodeDecodeError, StoreError) as error:
            reason = error.strerror if isinstance(error, OSError) else \
                "bytes that are not UTF-8" if isinstance(error, UnicodeDecodeError) else \
                str(error).removeprefix(f"{path}: ")
            raise self.broken(f"{path.relative_to(self.path)}: {reason}") from None
        if manifest.format_version < FORMAT_VERSION:
            where = shlex.quote(str(self.path))
            raise StoreError(f"{self.path} is an index of format {manifest.format_version}, "
                             f"which this semsearch reads no more; `semsearch upgrade --index "
                             f"{where}` converts it without embedding anything again")
        return manifest

    def format_version(self) -> int:
        """The live generation's format (1 for an index of an older semsearch)."""
        path = self.generation() / MANIFEST
        try:
            return int(json.loads(path.read_bytes()).get("format_version", 1))
        except (OSError, ValueError, AttributeError):
            raise self.broken(f"{path.relative_to(self.path)}: unreadable") from None

    def broken(self, reason: str) -> StoreError:
        """The error for a folder whose live state cannot be read, with the ways out."""
        where = shlex.quote(str(self.path))
        return StoreError(f"{self.path} is damaged: {reason}. `semsearch recover --index {where}` "
                          f"makes the newest intact generation live; `semsearch index PATH... "
                          f"--index {where}` rebuilds it")

    def verify(self) -> list[str]:
        """Every problem found re-reading the live state whole: its files against their
        checksums, the document database's structure, and each paper against the checksum it
        was stored with. An empty list means intact."""
        generation = self.generation()
        self.manifest(generation)
        table = DocumentTable.open_for_read(generation / documents_module.FILE)
        try:
            problems = table.integrity_problems()
            if problems:
                return problems
            commit = table.latest_commit()
            problems += damaged_files(generation, commit.files())
            problems += table.damaged_rows()
            if not problems:
                problems += [f"{table.path}: the commit record does not match the index: "
                             f"{problem}" for problem in _record_problems(generation, commit,
                                                                           table)]
            return problems
        finally:
            table.close()

    def recover(self) -> str:
        """Make the newest intact generation live (none newer than the one the pointer named,
        whose writes never committed); its name."""
        with _locked(self._lock_path()):
            named = self._live_name()
            limit = _generation_number(named) if named else None
            for candidate in sorted(self._generations(), key=lambda p: _generation_number(p.name),
                                    reverse=True):
                if limit is not None and _generation_number(candidate.name) > limit:
                    continue
                if _intact(self, candidate):
                    if candidate.name != named:
                        _fs.write_atomically(self.path / POINTER, candidate.name + "\n")
                    return candidate.name
        where = shlex.quote(str(self.path))
        raise StoreError(f"{self.path} holds no intact generation to recover; rebuild it with "
                         f"`semsearch index PATH... --index {where}`")

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def new_generation(self, *, force: bool = False) -> Iterator[GenerationBuilder]:
        """A new generation to build a whole index in; live only once ``commit`` returns.

        ``force``: build in a folder that holds other things (only the store's own names are
        ever written or deleted there).
        """
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path} is a file, not an index folder")
        created_folder = not self.path.exists()
        if not (created_folder or force or self.is_index()) and any(self.path.iterdir()):
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
            previous = self._live_name()
            numbers = [_generation_number(p.name) for p in self._generations()]
            number = 1 + max(numbers + [_generation_number(previous) if previous else 0])
            staging = self.path / f"gen-{number:06d}"
            builder = None
            try:
                (staging / SEGMENTS).mkdir(parents=True)
                builder = GenerationBuilder(self, staging)
                yield builder
            except (OSError, sqlite3.Error) as error:
                raise _write_failed(self.path, error) from None
            finally:
                if builder is not None:
                    builder.documents.close()
                # A build is committed the moment the pointer names it, whatever happens
                # after: the generation the pointer names is never deleted.
                if self._live_name() != staging.name:
                    (self.path / (POINTER + ".tmp")).unlink(missing_ok=True)
                    self._keep_the_furthest_attempt(staging)
                    if created_folder and not self.is_index():
                        shutil.rmtree(self.path, ignore_errors=True)
            self._drop_generations(keep={staging.name, previous})

    def interrupted_build(self) -> EmbeddedSoFar | None:
        """What the furthest unfinished build embedded and wrote durably, if any."""
        attempts = [a for p in self._generations() if (a := _embedded_so_far(p)) is not None]
        return max(attempts, key=lambda a: a.rows, default=None)

    def _keep_the_furthest_attempt(self, staging: Path) -> None:
        """After a build that did not finish (``staging``): of the unfinished builds, keep
        the one with the most vectors written durably (for the next build to take them
        from), none other."""
        furthest = self.interrupted_build()
        for path in self._generations():
            unfinished = path == staging or not (path / MANIFEST).exists()
            if unfinished and (furthest is None or path != furthest.generation):
                shutil.rmtree(path, ignore_errors=True)

    @contextmanager
    def writing(self) -> Iterator[Writer]:
        """A write inside the live generation, under the writer lock: the live state is read
        after the lock is taken, so a write always builds on the latest one."""
        with _locked(self._lock_path()):
            generation = self.generation()
            manifest = self.manifest(generation)
            writer = Writer(self, generation, manifest, None)
            writer.clean_up()  # what a write killed before its commit left behind
            table = DocumentTable.open_for_write(generation / documents_module.FILE)
            writer.documents = table
            try:
                try:
                    writer.base = table.latest_commit()
                    yield writer
                except sqlite3.DatabaseError as error:
                    if isinstance(error, sqlite3.OperationalError) and "full" in str(error):
                        raise _write_failed(self.path, error) from None
                    raise StoreError(f"{generation / documents_module.FILE}: the document table "
                                     f"is damaged ({error}); nothing was written. "
                                     f"{_DAMAGE_ADVICE}") from None
                except OSError as error:
                    raise _write_failed(self.path, error) from None
            finally:
                table.close()  # rolls back what was not committed
                writer.clean_up()

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
        """Remove superseded generations and leftovers of crashed builds. The one live before
        this build stays one build longer."""
        for path in self._generations():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


class GenerationBuilder:
    """A new generation being built: its document table (staged, not yet live) and the folder
    its segments go to."""

    def __init__(self, folder: IndexFolder, path: Path):
        self.folder = folder
        self.path = path
        self.segments_path = path / SEGMENTS
        self.documents = DocumentTable.create(path / documents_module.FILE)

    def record_embedded(self, segment: str, rows: int, model: str, quantized: bool,
                        blocks: list[tuple[int, str]]) -> None:
        """Say that the first ``rows`` rows of ``segment`` (vectors and rows files) are
        durable: a build started again after this one is interrupted takes them. ``blocks``:
        (rows up to, sha256) of each checkpoint's stretch of rows, checked before they are
        taken."""
        _fs.write_atomically(self.path / EMBEDDED, json.dumps({
            "segment": segment, "rows": rows, "model": model, "quantized": quantized,
            "blocks": [list(block) for block in blocks]}))

    def commit(self, manifest: Manifest, commit: Commit) -> None:
        """Record the first state, make everything durable, and switch the pointer to it."""
        _fs.write_synced(self.path / MANIFEST, replace(manifest, created=now()).to_json())
        self.documents.add_commit(replace(commit, created=now()))
        self.documents.go_live()
        self.documents.close()
        _fs.fsync_tree(self.path)
        _record_checked(self.path, commit.files())
        pointer = self.folder.path / POINTER
        temporary = pointer.with_name(POINTER + ".tmp")
        _fs.write_synced(temporary, self.path.name + "\n")
        os.replace(temporary, pointer)  # the commit point of a build
        try:
            _fs.fsync_dir(self.folder.path)
        except OSError as error:
            raise StoreError(f"{self.folder.path}: the index is built and live, but syncing the "
                             f"folder failed ({error.strerror}); it may not survive a power "
                             f"failure") from None


@dataclass(frozen=True)
class EmbeddedSoFar:
    """What an unfinished build wrote durably: the vectors of its first ``rows`` rows (in row
    order) in the folder ``segment``, made by ``model``, and the document table that says
    what each row holds."""

    generation: Path
    documents: Path
    segment: Path
    rows: int
    model: str
    quantized: bool
    #: (rows up to, sha256 of that stretch of rows and vectors): see ``record_embedded``
    blocks: tuple[tuple[int, str], ...] = ()


def _embedded_so_far(generation: Path) -> EmbeddedSoFar | None:
    if (generation / MANIFEST).exists():
        return None  # a finished build
    try:
        record = json.loads((generation / EMBEDDED).read_text())
        return EmbeddedSoFar(generation, generation / documents_module.FILE,
                             generation / SEGMENTS / record["segment"], int(record["rows"]),
                             str(record["model"]), bool(record["quantized"]),
                             tuple((int(end), str(digest))
                                   for end, digest in record.get("blocks", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Writer:
    """A write inside the live generation: ``base`` is the state it starts from, read under
    the writer lock; ``documents`` is in the write's transaction."""

    def __init__(self, folder: IndexFolder, generation: Path, manifest: Manifest,
                 documents: DocumentTable):
        self.folder = folder
        self.generation = generation
        self.manifest = manifest
        self.documents = documents
        self.segments_path = generation / SEGMENTS
        self.base: Commit | None = None
        self._next_name: int | None = None
        self.committed: Commit | None = None

    def new_name(self, prefix: str) -> str:
        """A name for a new segment or vector index, never used in this generation."""
        if self._next_name is None:
            self._next_name = self.base.next_name
        name = f"{prefix}-{self._next_name:06d}"
        self._next_name += 1
        return name

    @property
    def next_name(self) -> int:
        return self._next_name if self._next_name is not None else self.base.next_name

    @property
    def pending_path(self) -> Path:
        """Where an add keeps the vectors it has embedded until it commits."""
        return self.generation / PENDING

    def commit(self, commit: Commit) -> Commit:
        """Record the new state in the write's transaction, and commit it: the commit point.
        Its segment files must already be written and fsynced."""
        commit = replace(commit, number=self.base.number + 1, next_name=self.next_name,
                         created=now())
        self.documents.add_commit(commit)
        self.documents.commit()
        self.committed = commit
        _record_checked(self.generation, commit.files())
        self.documents.checkpoint()
        return commit

    def pin_base(self) -> Snapshot:
        """The base state as a snapshot (to read its segments and vector index), its files
        held open like any reader's."""
        return Snapshot.of(self.folder, self.generation, self.manifest, self.documents,
                           self.base, own_documents=False)

    def clean_up(self) -> None:
        """Remove segment folders no recent commit names: leftovers of this write if it did
        not commit, and what merges replaced. Read from the database as committed, so an
        interrupted commit is judged by what it did, not by what this process believed."""
        try:
            table = DocumentTable.open_for_read(self.generation / documents_module.FILE)
            try:
                keep = set().union(*(c.folders for c in table.recent_commits(KEEP_COMMITS)))
            finally:
                table.close()
        except (StoreError, sqlite3.Error):
            return  # cleaning up is housekeeping: the next write tries again
        for path in self.segments_path.iterdir() if self.segments_path.is_dir() else ():
            if path.name not in keep and re.fullmatch(r"(seg|ann|map)-\d{6,}", path.name):
                shutil.rmtree(path, ignore_errors=True)


class Snapshot:
    """One committed state, pinned: its manifest, commit record and tombstones, its document
    table in a read transaction, and every file of its segments held open.

    The kernel keeps a deleted file while it is open, so whatever this snapshot reads later,
    it reads from the state it pinned, however many writes, merges and builds came since.
    """

    def __init__(self, path: Path, manifest: Manifest, commit: Commit, documents: DocumentTable,
                 handles: dict[str, int], own_documents: bool = True):
        self.path = path
        self.manifest = manifest
        self.commit = commit
        self.documents = documents
        self._handles = handles
        self._sizes = {name: info.get("bytes") for name, info in commit.files().items()}
        self.tombstones = documents.tombstones()
        if problems := commit.problems(self.tombstones):
            raise StoreError(f"{documents.path}: the commit record does not match the index: "
                             f"{problems[0]}; {_DAMAGE_ADVICE}")
        self._latest_stamp: tuple | None = None
        self._closer = weakref.finalize(self, _close_all, handles,
                                        documents if own_documents else None)

    @classmethod
    def pin(cls, folder: IndexFolder) -> Snapshot:
        """The live state, its files checked (size, and a checksum where a file changed since
        it was last found intact) and held open."""
        for _ in range(5):
            generation = folder.generation()
            manifest = folder.manifest(generation)
            table = DocumentTable.open_for_read(generation / documents_module.FILE)
            try:
                commit = table.latest_commit()
                return cls.of(folder, generation, manifest, table, commit)
            except _Missing as missing:
                table.close()
                if folder._live_name() == generation.name and \
                        _latest_number(generation) == commit.number:
                    raise StoreError(f"{missing}: missing from the index; "
                                     f"{_DAMAGE_ADVICE}") from None
                # a write replaced what this read began with, and removed its files before
                # they were held open: read the new state
            except BaseException:
                table.close()
                raise
        raise StoreError(f"{folder.path} is being rewritten too often to open; try again")

    @classmethod
    def of(cls, folder: IndexFolder, generation: Path, manifest: Manifest,
           table: DocumentTable, commit: Commit, own_documents: bool = True) -> Snapshot:
        files = commit.files()
        handles: dict[str, int] = {}
        try:
            for name in files:
                try:
                    handles[name] = os.open(generation / name, os.O_RDONLY)
                except FileNotFoundError:
                    raise _Missing(generation / name) from None
            check_files(generation, files)
            return cls(generation, manifest, commit, table, handles, own_documents)
        except BaseException:
            _close_all(handles)
            raise

    @property
    def name(self) -> str:
        return self.path.name

    def check_sizes(self) -> None:
        """Every file of this state still its recorded size: a file cut short under a running
        reader (a damaged disk, a careless copy) is named here, before a search reads past
        its new end through a memory map, which would kill the process."""
        for name, handle in self._handles.items():
            size = os.fstat(handle).st_size
            if size != self._sizes[name]:
                raise StoreError(f"{self.path / name}: {size} bytes, the record says "
                                 f"{self._sizes[name]}: the file was changed under this "
                                 f"process; {_DAMAGE_ADVICE}")

    def is_latest(self, folder: IndexFolder) -> bool:
        """Whether no write has been committed to ``folder`` since this state.

        Asked before every request of a server, so the answer is kept with the files a
        commit changes (the live-generation pointer, the document database and its log):
        while none of them has changed, nothing was committed. The files are looked at
        before the database is read, so a commit landing in between changes them again."""
        stamp = folder.change_stamp(self.path)
        if stamp == self._latest_stamp:
            return True
        latest = folder.generation().name == self.name and \
            _latest_number(self.path) == self.commit.number
        if latest:
            self._latest_stamp = stamp
        return latest

    def locate(self, name: str) -> Path:
        """A path that reads this snapshot's file ``name``, even after it was deleted: the
        descriptor held since the state was pinned (a file's own path could be removed by a
        writer's cleanup between being found here and being opened by the caller)."""
        handle = self._handles.get(name)
        if handle is None:
            raise StoreError(f"{self.path / name}: not part of this index state")
        held = Path(f"{_DESCRIPTORS}/{handle}")
        return held if held.exists() else self.path / name

    def part(self, name: str) -> PartFiles:
        """The files of one segment or vector index of this state."""
        return PartFiles(self, f"{SEGMENTS}/{name}")

    def close(self) -> None:
        self._closer()


@dataclass(frozen=True)
class PartFiles:
    """The files of one part of a snapshot (a segment, a vector index), by name."""

    snapshot: Snapshot
    folder: str

    def path(self, name: str) -> Path:
        return self.snapshot.locate(f"{self.folder}/{name}")

    def has(self, name: str) -> bool:
        return f"{self.folder}/{name}" in self.snapshot._handles

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


class _Missing(Exception):
    """A file of a state is gone (deleted by a later write, or lost)."""


def _latest_number(generation: Path) -> int | None:
    try:
        table = DocumentTable.open_for_read(generation / documents_module.FILE)
    except StoreError:
        return None
    try:
        return table.latest_commit().number
    finally:
        table.close()


def _close_all(handles: dict[str, int], documents: DocumentTable | None = None) -> None:
    if documents is not None:
        documents.close()
    for handle in handles.values():
        try:
            os.close(handle)
        except OSError:
            pass
    handles.clear()


def _record_problems(generation: Path, commit: Commit, table: DocumentTable) -> list[str]:
    """The commit record against the files and the document table, row by row: every live
    paper held by exactly one segment, every row a segment holds either a paper or marked
    deleted."""
    tombstones = table.tombstones()
    if problems := commit.problems(tombstones):
        return problems
    live = table.live_rows()
    if len(live) != commit.count:
        return [f"it says {commit.count} papers, the document table holds {len(live)}"]
    try:
        held = np.concatenate([_fs.load_array(generation / SEGMENTS / s.name / "rows.npy")
                               for s in commit.segments]) if commit.segments \
            else np.zeros(0, np.int64)
    except (OSError, ValueError) as error:
        return [f"cannot read a segment's rows ({error})"]
    held.sort()
    if len(np.unique(held)) != len(held):
        return ["a row is held by two segments"]
    if not np.array_equal(np.setdiff1d(held, tombstones, assume_unique=True), live):
        missing = np.setdiff1d(live, held)
        return [f"paper row {int(missing[0])} is in no segment" if len(missing)
                else "a segment holds a row that is neither a paper nor marked deleted"]
    return []


def _intact(folder: IndexFolder, generation: Path) -> bool:
    try:
        folder.manifest(generation)
        table = DocumentTable.open_for_read(generation / documents_module.FILE)
        try:
            if table.integrity_problems():
                return False
            return not damaged_files(generation, table.latest_commit().files())
        finally:
            table.close()
    except (StoreError, sqlite3.Error, OSError):
        return False


def _write_failed(path: Path, error: Exception) -> StoreError:
    """One line for a write that the disk or the file system refused; nothing was changed.

    Not every library says why a write failed (numpy and FAISS report short writes, SQLite
    "disk is full" for any reason), so a disk found full is named as the reason."""
    import errno

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


# -- checksums -----------------------------------------------------------------------------

def damaged_files(generation: Path, files: dict[str, dict[str, Any]]) -> list[str]:
    """Every file whose size or sha256 differs from what was recorded, with why."""
    problems = []
    for name, expected in sorted(files.items()):
        path = generation / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif problem := _mismatch(path, expected, path.stat()):
            problems.append(f"{path}: {problem}")
    return problems


def check_files(generation: Path, files: dict[str, dict[str, Any]]) -> None:
    """The check on every open: a missing, truncated or altered file is named, not misread.

    Hashing every file on every open would cost a one-shot query more than the query itself,
    so a file is hashed only when its size, modification time or inode differ from when it
    was last found intact (recorded in CHECKED, first when written). Any write to a file
    changes its modification time; `semsearch verify` re-hashes everything, for damage that did
    not come through a write.
    """
    checked = _read_checked(generation)
    passed = []
    for name, expected in files.items():
        path = generation / name
        try:
            status = path.stat()
        except FileNotFoundError:
            raise StoreError(f"{path}: missing from the index; {_DAMAGE_ADVICE}") from None
        if status.st_size == expected.get("bytes") and checked.get(name) == _stamp(status):
            continue
        if problem := _mismatch(path, expected, status):
            raise StoreError(f"{path}: {problem}: the file is damaged; {_DAMAGE_ADVICE}")
        passed.append(name)
    if passed:
        _record_checked(generation, passed, checked)


def _mismatch(path: Path, expected: dict[str, Any], status: os.stat_result) -> str | None:
    """How a file differs from its record (size first, then sha256), if it does."""
    if status.st_size != expected.get("bytes"):
        return f"size {status.st_size} bytes, the record says {expected.get('bytes')}"
    if _fs.file_checksum(path)["sha256"] != expected.get("sha256"):
        return "contents differ from the recorded checksum"
    return None


def _stamp(status: os.stat_result) -> list[int]:
    return [status.st_size, status.st_mtime_ns, status.st_ino]


def _read_checked(generation: Path) -> dict[str, list[int]]:
    try:
        return json.loads((generation / CHECKED).read_text())
    except (OSError, ValueError):
        return {}


def _record_checked(generation: Path, names, already: dict | None = None) -> None:
    """Remember which files were found intact, so the next open need not hash them again.

    Best effort: in a read-only index folder every open hashes what it cannot record."""
    stamps = dict(already if already is not None else _read_checked(generation))
    for name in names:
        try:
            stamps[name] = _stamp((generation / name).stat())
        except OSError:
            continue
    try:
        _fs.write_atomically(generation / CHECKED, json.dumps(stamps))
    except OSError:
        pass


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


def tombstone_mask(rows: np.ndarray, tombstones: np.ndarray) -> np.ndarray | None:
    """For rows (ascending), which are tombstoned; None if none are."""
    if not len(tombstones):
        return None
    at = np.minimum(np.searchsorted(tombstones, rows), len(tombstones) - 1)
    dead = tombstones[at] == rows
    return dead if dead.any() else None
