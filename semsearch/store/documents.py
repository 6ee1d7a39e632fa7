"""The document database of a generation: papers by row, their facets, the rows deleted
since their segments were written (tombstones), and the commit records.

One SQLite database in WAL mode. A write changes it in one transaction, whose commit is the
commit of the whole write (its segment files are written and fsynced before); a reader holds
one read transaction open for as long as it reads a state, so it sees that state whatever is
committed meanwhile. The row of a paper is its id in the vector index and in BM25.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from semsearch.documents import Document, normalise_text
from semsearch.errors import StoreError
from semsearch.filters import Filter, facets_of, fold_label
from semsearch.store.records import Commit

FILE = "documents.sqlite"

SCHEMA = """
    CREATE TABLE documents (
        row INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        abstract TEXT NOT NULL,
        metadata TEXT NOT NULL,
        title_key TEXT NOT NULL,
        content_key TEXT NOT NULL,
        checksum TEXT NOT NULL
    );
    CREATE INDEX documents_title_key ON documents (title_key);
    CREATE UNIQUE INDEX documents_content_key ON documents (content_key);
    CREATE TABLE facets (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        row INTEGER NOT NULL,
        shown TEXT NOT NULL
    );
    CREATE INDEX facets_lookup ON facets (kind, value);
    CREATE INDEX facets_row ON facets (row);
    CREATE TABLE tombstones (row INTEGER PRIMARY KEY);
    CREATE TABLE commits (number INTEGER PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE probes (count INTEGER NOT NULL, dimension INTEGER NOT NULL,
                         vectors BLOB NOT NULL);
"""
#: a database being built is not live until its generation is switched in, so SQLite's journal
#: would only slow the build; a 256 MiB page cache holds the id and duplicate-key indexes of
#: a multi-million-paper input (bounded, unlike Python dicts)
BUILDING = "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"
#: a live database: every commit durable before it returns
LIVE = "PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;"
#: a paper's id, title, abstract and metadata, in the order ``Document`` takes them
PaperFields = tuple[str, str, str, dict[str, Any]]
_PLURALS = {"category": "categories", "author": "authors", "tag": "tags"}


class DocumentTable:
    """Documents by row, in one SQLite connection (a writer's, a reader's, or a scratch one)."""

    def __init__(self, connection: sqlite3.Connection, path: Path, keep_text: bool = True):
        self._db: sqlite3.Connection | None = connection
        self.path = path
        #: False for a table that only applies the duplicate rules (a dry run): ids and keys
        self.keep_text = keep_text

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, keep_text: bool = True) -> DocumentTable:
        """A new database, for a full build or a dry run; ``live`` makes it a live one."""
        db = _connect(path)
        db.executescript(BUILDING + SCHEMA)
        db.execute("BEGIN")
        return cls(db, path, keep_text)

    def finish_staging(self) -> None:
        """Make what a build staged durable before it embeds anything (a build started again
        after a crash matches its papers against these)."""
        self._db.execute("COMMIT")
        with self.path.open("rb") as handle:
            os.fsync(handle.fileno())
        self._db.execute("BEGIN")

    def attach(self, schema: str, path: Path) -> None:
        """Attach another document table, read-only, as ``schema`` (for ``reusable_rows``)."""
        self._db.execute("COMMIT")
        self._db.execute(f"ATTACH DATABASE ? AS {schema}",
                         (f"file:{urllib.parse.quote(str(path))}?mode=ro",))
        self._db.execute("BEGIN")

    def detach(self, schema: str) -> None:
        self._db.execute("COMMIT")
        self._db.execute(f"DETACH DATABASE {schema}")
        self._db.execute("BEGIN")

    def reusable_rows(self, schema: str, first: int, last: int,
                      up_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(row, its row there) for the rows in [first, last] whose exact title and abstract
        the attached table ``schema`` holds (at a row at most ``up_to``): what was embedded
        there is what this table's papers would be."""
        found = self._db.execute(
            f"SELECT d.row, p.row FROM documents d JOIN {schema}.documents p "
            "ON p.content_key = d.content_key AND p.title = d.title AND p.abstract = d.abstract "
            "WHERE d.row BETWEEN ? AND ? AND p.row <= ? ORDER BY d.row",
            (first, last, (1 << 62) if up_to is None else up_to)).fetchall()
        pairs = np.array(found, dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]

    def go_live(self) -> None:
        """Commit what a build staged and switch the database to WAL mode, durable from now."""
        self._db.execute("COMMIT")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(LIVE)

    @classmethod
    def open_for_write(cls, path: Path) -> DocumentTable:
        """The live database of a generation, in a write transaction (one writer at a time:
        the caller holds the index's writer lock)."""
        try:
            db = _connect(path)
            db.executescript(LIVE)
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreError(f"{path}: cannot write the document table ({error})") from None
        return cls(db, path)

    @classmethod
    def open_for_read(cls, path: Path) -> DocumentTable:
        """The database in a read transaction: every later call sees the state it began with.

        Where SQLite cannot make WAL's shared-memory file (a read-only mount, a full disk),
        the file is read as immutable, which is exact only while the log is empty: every
        writer folds the log in when it finishes, so it is, unless a write is under way."""
        try:
            try:
                db = _connect(path, mode="ro")
                db.execute("BEGIN")
                db.execute("SELECT number FROM commits LIMIT 1").fetchone()
            except sqlite3.OperationalError:
                if not _log_is_empty(path):
                    raise
                db = _connect(path, mode="ro", immutable=True)
                db.execute("BEGIN")
            # Memory-mapped reads: a page once read stays mapped while the table is open;
            # read() leaves it in the page cache only, which a kernel that reclaims cold pages
            # (Linux with DAMON) empties within a minute.
            db.execute(f"PRAGMA mmap_size = {path.stat().st_size}")
            db.execute("SELECT row FROM documents LIMIT 1").fetchone()
        except (sqlite3.DatabaseError, OSError) as error:
            raise StoreError(f"{path}: cannot read the document table ({error})") from None
        return cls(db, path)

    def close(self) -> None:
        """Let go of the connection; a transaction still open is rolled back."""
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def commit(self) -> None:
        """Make this connection's write transaction durable: the commit point of a write."""
        self._db.execute("COMMIT")

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file, where no reader still needs it."""
        try:
            # never wait for readers: one holding an old state keeps its part of the log,
            # and a later write folds it in
            self._db.execute("PRAGMA busy_timeout = 0")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass  # only housekeeping: the next write tries again

    # -- commit records and tombstones ----------------------------------------------------

    def latest_commit(self) -> Commit:
        found = self._db.execute(
            "SELECT record FROM commits ORDER BY number DESC LIMIT 1").fetchone()
        if found is None:
            raise StoreError(f"{self.path}: holds no committed state")
        return Commit.from_json(found[0], self.path)

    def recent_commits(self, count: int) -> list[Commit]:
        return [Commit.from_json(record, self.path) for (record,) in self._db.execute(
            "SELECT record FROM commits ORDER BY number DESC LIMIT ?", (count,))]

    def add_commit(self, commit: Commit) -> None:
        self._db.execute("INSERT INTO commits (number, record) VALUES (?, ?)",
                         (commit.number, commit.to_json()))

    def tombstones(self) -> np.ndarray:
        """Sorted rows deleted since the segments that hold them were written."""
        return np.array([row for (row,) in self._db.execute(
            "SELECT row FROM tombstones ORDER BY row")], dtype=np.int64)

    def bury(self, rows: Iterable[int]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO tombstones (row) VALUES (?)",
                             [(int(row),) for row in rows])

    def exhume(self, rows: Iterable[int]) -> None:
        """Forget tombstones of rows no segment or vector index holds any more."""
        self._db.executemany("DELETE FROM tombstones WHERE row = ?", [(int(r),) for r in rows])

    def clear_tombstones(self) -> None:
        self._db.execute("DELETE FROM tombstones")

    # -- tuning probes ----------------------------------------------------------------------

    def keep_probes(self, probes: np.ndarray) -> None:
        """Keep the query vectors a build was given to tune on, so that a re-training
        (reindex, a new recall target) tunes on them again."""
        matrix = np.ascontiguousarray(probes, dtype="<f4")
        self._db.execute("DELETE FROM probes")
        self._db.execute("INSERT INTO probes (count, dimension, vectors) VALUES (?, ?, ?)",
                         (matrix.shape[0], matrix.shape[1], matrix.tobytes()))

    def kept_probes(self) -> np.ndarray | None:
        """The query vectors kept by ``keep_probes``; None if the build was given none (or
        the table predates them)."""
        try:
            found = self._db.execute("SELECT count, dimension, vectors FROM probes").fetchone()
        except sqlite3.OperationalError:
            return None
        if found is None:
            return None
        count, dimension, data = found
        return np.frombuffer(data, dtype="<f4").reshape(count, dimension).copy()

    # -- documents ------------------------------------------------------------------------

    def stage(self, document: Document) -> tuple[str, int]:
        """Store one document of a build, applying the duplicate rules; (outcome, row).

        Outcomes: "new"; "duplicate" (same id, or same title and abstract, already stored:
        nothing changes); "replaced" (same id, new text: the last one read wins).
        """
        title_key, content_key = document.duplicate_keys
        if self.keep_text:
            title, abstract, metadata = document.title, document.abstract, _dump(document.metadata)
            checksum = _row_checksum(document.id, title, abstract, metadata)
        else:  # ids and keys only; an abstract's first character, to count those without
            title = metadata = checksum = ""
            abstract = document.abstract[:1]
        # The common case, a new document, takes one statement; both keys are unique.
        cursor = self._db.execute(
            "INSERT INTO documents (id, title, abstract, metadata, title_key, content_key, "
            "checksum) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (document.id, title, abstract, metadata, title_key, content_key, checksum))
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
            "content_key = ?, checksum = ? WHERE row = ?",
            (title, abstract, metadata, title_key, content_key, checksum, found[0]))
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
                self._db.execute("UPDATE documents SET metadata = ?, checksum = ? WHERE row = ?",
                                 (metadata, _row_checksum(document.id, document.title,
                                                          document.abstract, metadata), found[0]))
                self._set_facets(found[0], document.metadata, replace=True)
            return "unchanged", None
        if self._db.execute("SELECT 1 FROM documents WHERE content_key = ?",
                            (content_key,)).fetchone():
            return "duplicate", None
        if found is not None:
            self._remove_row(found[0])
        self.insert(row, document)
        return ("updated", found[0]) if found is not None else ("new", None)

    def insert(self, row: int, document: Document) -> None:
        """Store a document under a given row (a new one, or one it already has elsewhere, as
        in an index being upgraded)."""
        title_key, content_key = document.duplicate_keys
        metadata = _dump(document.metadata)
        self._db.execute(
            "INSERT INTO documents (row, id, title, abstract, metadata, title_key, content_key, "
            "checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row, document.id, document.title, document.abstract, metadata, title_key,
             content_key, _row_checksum(document.id, document.title, document.abstract,
                                        metadata)))
        self._set_facets(row, document.metadata)

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

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def count_without_abstract(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents WHERE abstract = ''")
                   .fetchone()[0])

    def batches(self, size: int, after: int = 0) -> Iterator[list[tuple[int, Document]]]:
        """Every (row, document) above ``after`` in row order, ``size`` at a time, without
        loading them all."""
        last = after
        while True:
            rows = self._db.execute(
                "SELECT row, id, title, abstract, metadata FROM documents WHERE row > ? "
                "ORDER BY row LIMIT ?", (last, size)).fetchall()
            if not rows:
                return
            yield [(row[0], _document(row[1:])) for row in rows]
            last = rows[-1][0]

    def batches_of_rows(self, rows: list[int], size: int) -> Iterator[list[tuple[int, Document]]]:
        """(row, document) for the given rows, in their order, ``size`` at a time."""
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            found = self.by_rows(chunk)
            yield [(row, found[row]) for row in chunk]

    def live_rows(self) -> np.ndarray:
        """Every stored row, sorted."""
        return np.fromiter((row for (row,) in self._db.execute(
            "SELECT row FROM documents ORDER BY row")), dtype=np.int64)

    def by_rows(self, rows: Iterable[int]) -> dict[int, Document]:
        return {row: Document(*paper) for row, paper in self.fields_by_rows(rows).items()}

    def fields_by_rows(self, rows: Iterable[int]) -> dict[int, PaperFields]:
        """The papers of these rows as plain tuples: what a search needs to make its hits,
        without making Documents on the way."""
        wanted = [int(row) for row in rows]
        found = {}
        for start in range(0, len(wanted), 512):
            chunk = wanted[start:start + 512]
            # Padded to a power of two, so the few statement texts a search uses stay compiled
            # in the connection's statement cache instead of being parsed again for each k.
            size = 1 << (len(chunk) - 1).bit_length()
            marks = ",".join("?" * size)
            for row in self._db.execute(
                    f"SELECT row, id, title, abstract, metadata FROM documents WHERE row IN "
                    f"({marks})", chunk + [-1] * (size - len(chunk))):
                found[row[0]] = _fields(row[1:])
        return found

    def random_rows(self, count: int, rng: np.random.Generator) -> list[int]:
        """Up to ``count`` rows picked at random, without reading the documents: rows drawn
        from the range rows were given in and kept if a paper holds them (most do: removed
        rows are few), so a million papers need not be listed; the list when they are not."""
        highest = self._db.execute("SELECT max(row) FROM documents").fetchone()[0]
        if highest is None:
            return []
        picked: list[int] = []
        for _ in range(4):
            wanted = count - len(picked)
            drawn = np.setdiff1d(rng.choice(highest + 1, min(2 * wanted, highest + 1),
                                             replace=False), picked)
            marks = ",".join("?" * len(drawn))
            held = {row for (row,) in self._db.execute(
                f"SELECT row FROM documents WHERE row IN ({marks})", drawn.tolist())}
            picked += [int(row) for row in drawn if row in held][:wanted]
            if len(picked) >= count:
                return picked
        rows = self.live_rows()
        return rng.choice(rows, min(count, len(rows)), replace=False).tolist()

    def row_of_id(self, doc_id: str) -> int | None:
        found = self._db.execute("SELECT row FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return found[0] if found else None

    def ids_from_row(self, row: int) -> list[tuple[int, str]]:
        """(row, id) of every paper at ``row`` or above, in row order."""
        return self._db.execute("SELECT row, id FROM documents WHERE row >= ? ORDER BY row",
                                (row,)).fetchall()

    def commit_times(self, above_row: int = 0) -> list[tuple[int, str]]:
        """(next free row after it, when) of each commit that added rows above ``above_row``,
        oldest first: a row arrived with the first commit whose next free row is above it."""
        found = []
        for (text,) in self._db.execute("SELECT record FROM commits ORDER BY number DESC"):
            record = orjson.loads(text)
            found.append((int(record["next_row"]), str(record.get("created") or "")))
            if record["next_row"] <= above_row:
                break
        return found[::-1]

    def ids_by_facet(self, kind: str) -> dict[str, list[str]]:
        """For each value of a facet (as the source wrote it), the ids of its papers."""
        found: dict[str, list[str]] = {}
        for shown, doc_id in self._db.execute(
                "SELECT f.shown, d.id FROM facets f JOIN documents d ON d.row = f.row "
                "WHERE f.kind = ? ORDER BY f.shown, d.row", (kind,)):
            found.setdefault(shown, []).append(doc_id)
        return found

    def rows_of_alias(self, alias: str) -> list[int]:
        """Rows of papers the source also called ``alias`` (a citation key, a Zotero item
        key), in any case."""
        found = self._db.execute("SELECT DISTINCT row FROM facets WHERE kind = 'alias' AND "
                                 "value = ? ORDER BY row", (fold_label(alias),)).fetchall()
        return [row[0] for row in found]

    def ids_after(self, row: int, count: int) -> list[tuple[int, str]]:
        """(row, id) of up to ``count`` papers after ``row``, in row order."""
        return self._db.execute("SELECT row, id FROM documents WHERE row > ? ORDER BY row "
                                "LIMIT ?", (row, count)).fetchall()

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

    def rows_sharing_titles(self) -> Iterator[list[int]]:
        """The rows of each normalised title that more than one paper has, in order."""
        for (rows,) in self._db.execute(
                "SELECT group_concat(row) FROM documents WHERE title_key != '' "
                "GROUP BY title_key HAVING count(*) > 1"):
            yield sorted(int(row) for row in rows.split(","))

    def titles(self) -> Iterator[str]:
        for (title,) in self._db.execute("SELECT title FROM documents"):
            yield title

    def damaged_rows(self, limit: int = 5) -> list[str]:
        """Papers whose stored text or metadata no longer match the checksum written with
        them (an edit that did not come through semsearch), the first few."""
        problems = []
        for doc_id, title, abstract, metadata, checksum in self._db.execute(
                "SELECT id, title, abstract, metadata, checksum FROM documents"):
            if _row_checksum(doc_id, title, abstract, metadata) != checksum:
                problems.append(f"{self.path}: paper {doc_id!r}: its text or metadata differ "
                                f"from what was stored")
                if len(problems) >= limit:
                    break
        return problems

    def integrity_problems(self) -> list[str]:
        try:
            found = [row[0] for row in self._db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as error:
            return [f"{self.path}: {error}"]
        return [] if found == ["ok"] else [f"{self.path}: {problem}" for problem in found[:5]]

    # -- facets and filters ---------------------------------------------------------------

    def _set_facets(self, row: int, metadata: dict[str, Any], replace: bool = False) -> None:
        if replace:
            self._db.execute("DELETE FROM facets WHERE row = ?", (row,))
        self._db.executemany("INSERT INTO facets (kind, value, row, shown) VALUES (?, ?, ?, ?)",
                             [(kind, key, row, shown) for kind, key, shown in facets_of(metadata)])

    def facet_counts(self, kind: str, limit: int) -> list[tuple[str, int]]:
        """The values papers have for a facet kind, as the source wrote them, with how many
        papers have each: years in order, other kinds the most common first."""
        order = "shown" if kind == "year" else "count(DISTINCT row) DESC, shown"
        return [(shown, count) for shown, count in self._db.execute(
            f"SELECT shown, count(DISTINCT row) FROM facets WHERE kind = ? GROUP BY shown "
            f"ORDER BY {order} LIMIT ?", (kind, limit))]

    def rows_matching(self, where: Filter) -> np.ndarray:
        """Sorted rows of the documents that pass the filter."""
        queries, values = [], []
        if where.years:
            first, last = where.years
            queries.append("SELECT row FROM facets WHERE kind = 'year' AND value BETWEEN ? AND ?")
            values += [f"{first or 0:04d}", f"{last or 9999:04d}"]
        for group in where.parts():
            alternatives = [_part_query(part) for part in group]
            queries.append(" UNION ".join(query for query, _ in alternatives))
            values += [value for _, part_values in alternatives for value in part_values]
        query = " INTERSECT ".join(f"SELECT * FROM ({q})" for q in queries) + " ORDER BY row"
        return np.array([row for (row,) in self._db.execute(query, values)], dtype=np.int64)

    def why_nothing_matches(self, where: Filter) -> str:
        """What to tell a user whose filter lets no paper through: which part matches nothing,
        with the closest values there are, or that the parts only fail together."""
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
                query, values = _part_query(part)
                if self._db.execute(query + " LIMIT 1", values).fetchone() is None:
                    closest = self._closest_shown(part)
                    hint = f"; closest {_PLURALS[part.kind]}: " + ", ".join(
                        repr(c) for c in closest) if closest else ""
                    return f"matches {part.flag}{hint}"
        return "matches all of these filters together (each part matches some papers)"

    def _closest_shown(self, part, limit: int = 3) -> list[str]:
        """Values of the part's kind spelled most like what was typed, as the source wrote
        them: among keys sharing the typed key's first letters (an indexed range), so the
        cost stays small however many authors the collection has."""
        typed = part.patterns[0].key if part.patterns else ""
        if part.kind == "author":
            typed = typed.split()[-1] if typed else ""
        found: list = []
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


def _part_query(part) -> tuple[str, list[str]]:
    conditions, values = [], [part.kind]
    for pattern in part.patterns:
        conditions.append("value = ?")
        values.append(pattern.key)
        if pattern.prefix:
            conditions.append("(value >= ? AND value < ?)")
            values += [pattern.key + ".", pattern.key + "/"]  # "/" sorts right after "."
    return f"SELECT row FROM facets WHERE kind = ? AND ({' OR '.join(conditions)})", values


def _connect(path: Path, mode: str | None = None, immutable: bool = False) -> sqlite3.Connection:
    """A connection that leaves transactions to us (BEGIN and COMMIT said where they go)."""
    options = "&".join(part for part in (f"mode={mode}" if mode else "",
                                         "immutable=1" if immutable else "") if part)
    uri = f"file:{urllib.parse.quote(str(path))}" + (f"?{options}" if options else "")
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def _log_is_empty(path: Path) -> bool:
    log = path.with_name(path.name + "-wal")
    return not log.exists() or log.stat().st_size == 0


def _fields(columns: tuple) -> PaperFields:
    doc_id, title, abstract, metadata = columns
    return doc_id, title, abstract, orjson.loads(metadata)


def _document(columns: tuple) -> Document:
    return Document(*_fields(columns))


def _dump(metadata: dict[str, Any]) -> str:
    return orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode()


def _row_checksum(doc_id: str, title: str, abstract: str, metadata: str) -> str:
    return hashlib.sha1("\x1f".join((doc_id, title, abstract, metadata)).encode()).hexdigest()
