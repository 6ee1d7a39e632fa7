"""A reader's state: tags (each paper in a tag marked for it or against it), the papers seen,
saved searches, and what the inbox has shown. It belongs to the reader, not to a build: one
SQLite file beside the index's generations (``IndexFolder.reader_path``), keyed by paper id
(never by row, which a rebuild changes), untouched by `index`, `reindex`, `upgrade`, `add`
and `remove`.

Every write is one SQLite transaction (WAL mode, synchronous=FULL): a kill at any moment
leaves the state before the write or after it. The file is separate from the index's own
database, so its writes never wait for an index write or a server, nor they for it. The
schema is changed only by numbered migrations (``MIGRATIONS``), applied in order on open.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from semsearch.errors import QueryError, StoreError
from semsearch.filters import fold

#: verdicts a paper can have in a tag
FOR, AGAINST = "for", "against"
VERDICTS = (FOR, AGAINST)

#: the schema, one step a number; a store at step n has run the first n (PRAGMA user_version)
MIGRATIONS: tuple[str, ...] = (
    # 1: tags and the papers marked in them, papers seen
    """
    CREATE TABLE tags (key TEXT PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL,
                       changed TEXT NOT NULL);
    CREATE TABLE marks (tag TEXT NOT NULL REFERENCES tags(key) ON DELETE CASCADE,
                        paper TEXT NOT NULL, verdict TEXT NOT NULL, title TEXT NOT NULL,
                        at TEXT NOT NULL, PRIMARY KEY (tag, paper));
    CREATE INDEX marks_paper ON marks (paper);
    CREATE TABLE seen (paper TEXT PRIMARY KEY, title_key TEXT NOT NULL, at TEXT NOT NULL);
    CREATE INDEX seen_title ON seen (title_key);
    """,
    # 2: saved searches; the inbox's last reading and where it stopped in the index
    """
    CREATE TABLE searches (name TEXT PRIMARY KEY, query TEXT NOT NULL, options TEXT NOT NULL,
                           created TEXT NOT NULL);
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE arrivals (paper TEXT PRIMARY KEY, at TEXT NOT NULL);
    CREATE INDEX arrivals_at ON arrivals (at);
    """,
)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Mark:
    """A paper in a tag: for it, or against it (a negative example for that tag)."""

    tag: str
    paper: str
    verdict: str
    #: the paper's title when it was marked: kept for a paper no longer in the index
    title: str
    at: str


@dataclass(frozen=True)
class TagSummary:
    """A tag, how many papers are marked for and against it, and when it last changed."""

    name: str
    papers: int
    against: int
    changed: str


@dataclass(frozen=True)
class SavedSearch:
    name: str
    query: str
    options: str
    created: str


class ReaderState:
    """The reader state of one index; each call opens the file, does its work in one
    transaction, and closes it (so a process, a thread or a server may share it)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- the file ---------------------------------------------------------------------------

    @contextmanager
    def _connected(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            empty = _empty()
            try:
                yield empty
            finally:
                empty.close()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(f"file:{urllib.parse.quote(str(self.path))}", uri=True,
                                 isolation_level=None, timeout=30)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"{self.path}: cannot open the reader's tags ({error})") from None
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            _migrate(db, self.path)
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            reason = "no space left on the device" if "full" in str(error) else str(error)
            raise StoreError(f"{self.path}: cannot {'write' if write else 'read'} the "
                             f"reader's tags ({reason}); nothing was changed") from None
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: the reader's tags are damaged ({error}); "
                             f"`semsearch tags --export` what can be read") from None
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    @property
    def version(self) -> int:
        with self._connected() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    # -- tags -------------------------------------------------------------------------------

    def mark(self, tag: str, papers: Iterable[tuple[str, str]], verdict: str = FOR) -> int:
        """Mark papers, (id, title) pairs, in ``tag`` (made if new) for it or against it; a
        paper already marked takes the new verdict. How many papers changed."""
        if verdict not in VERDICTS:
            raise QueryError(f"a paper is marked {' or '.join(VERDICTS)} a tag, not {verdict!r}")
        key, name = _tag_key(tag), " ".join(tag.split())
        at = now()
        with self._connected(write=True) as db:
            db.execute("INSERT INTO tags (key, name, created, changed) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET changed = excluded.changed",
                       (key, name, at, at))
            changed = 0
            for paper, title in papers:
                cursor = db.execute(
                    "INSERT INTO marks (tag, paper, verdict, title, at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (tag, paper) DO UPDATE SET verdict = excluded.verdict, "
                    "title = excluded.title, at = excluded.at "
                    "WHERE marks.verdict != excluded.verdict", (key, paper, verdict, title, at))
                changed += cursor.rowcount
            return changed

    def unmark(self, tag: str, papers: Iterable[str]) -> int:
        """Take papers out of a tag; how many were in it. The tag stays, even empty."""
        key = self._known_tag(tag)
        with self._connected(write=True) as db:
            removed = sum(db.execute("DELETE FROM marks WHERE tag = ? AND paper = ?",
                                     (key, paper)).rowcount for paper in papers)
            if removed:
                db.execute("UPDATE tags SET changed = ? WHERE key = ?", (now(), key))
            return removed

    def delete_tag(self, tag: str) -> int:
        """Drop a tag and its marks; how many marks went with it."""
        key = self._known_tag(tag)
        with self._connected(write=True) as db:
            marks = db.execute("SELECT count(*) FROM marks WHERE tag = ?", (key,)).fetchone()[0]
            db.execute("DELETE FROM tags WHERE key = ?", (key,))
            return int(marks)

    def tags(self) -> list[TagSummary]:
        """Every tag, the most recently changed first."""
        with self._connected() as db:
            return [TagSummary(name, int(papers or 0), int(against or 0), changed)
                    for name, papers, against, changed in db.execute(
                        "SELECT t.name, sum(m.verdict = 'for'), sum(m.verdict = 'against'), "
                        "t.changed FROM tags t LEFT JOIN marks m ON m.tag = t.key "
                        "GROUP BY t.key ORDER BY t.changed DESC, t.name")]

    def marks(self, tags: Iterable[str] | None = None) -> list[Mark]:
        """The marks of some tags (by name, any case), or of every tag."""
        with self._connected() as db:
            names = dict(db.execute("SELECT key, name FROM tags"))
            wanted = None if tags is None else [self._known_tag(t, names) for t in tags]
            rows = db.execute("SELECT tag, paper, verdict, title, at FROM marks ORDER BY at, "
                              "paper").fetchall()
        return [Mark(names[tag], paper, verdict, title, at) for tag, paper, verdict, title, at
                in rows if wanted is None or tag in wanted]

    def tag_name(self, tag: str) -> str:
        """A tag's name as it was first written, given any spelling of it."""
        with self._connected() as db:
            names = dict(db.execute("SELECT key, name FROM tags"))
        return names[self._known_tag(tag, names)]

    def _known_tag(self, tag: str, names: dict[str, str] | None = None) -> str:
        key = _tag_key(tag)
        if names is None:
            with self._connected() as db:
                names = dict(db.execute("SELECT key, name FROM tags"))
        if key not in names:
            known = ", ".join(repr(n) for n in sorted(names.values())[:10]) or "none yet"
            raise QueryError(f"no tag {tag!r}; the tags are: {known}")
        return key

    # -- papers seen --------------------------------------------------------------------------

    def see(self, papers: Iterable[tuple[str, str]]) -> None:
        """Mark papers, (id, normalised title) pairs, as seen (the inbox shows each once)."""
        at = now()
        with self._connected(write=True) as db:
            db.executemany("INSERT OR IGNORE INTO seen (paper, title_key, at) VALUES (?, ?, ?)",
                           [(paper, key, at) for paper, key in papers])

    def unsee(self, papers: Iterable[str]) -> None:
        with self._connected(write=True) as db:
            db.executemany("DELETE FROM seen WHERE paper = ?", [(p,) for p in papers])

    def seen(self) -> dict[str, str]:
        """paper id -> normalised title of every paper seen."""
        with self._connected() as db:
            return dict(db.execute("SELECT paper, title_key FROM seen"))

    # -- arrivals, and the inbox's bookmark -----------------------------------------------------

    def setting(self, name: str, default: str | None = None) -> str | None:
        with self._connected() as db:
            found = db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return found[0] if found else default

    def set_setting(self, name: str, value: str) -> None:
        with self._connected(write=True) as db:
            db.execute("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) "
                       "DO UPDATE SET value = excluded.value", (name, value))

    def arrived(self, papers: Iterable[tuple[str, str]], settings: dict[str, str]) -> None:
        """Record when papers, (id, time) pairs, first came into the index (the first time
        is kept), with the inbox's settings, in one transaction."""
        with self._connected(write=True) as db:
            db.executemany("INSERT OR IGNORE INTO arrivals (paper, at) VALUES (?, ?)",
                           list(papers))
            db.executemany("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) "
                           "DO UPDATE SET value = excluded.value", list(settings.items()))

    def arrivals_since(self, moment: str) -> dict[str, str]:
        """paper id -> arrival, of the papers that came at ``moment`` or later."""
        with self._connected() as db:
            return dict(db.execute("SELECT paper, at FROM arrivals WHERE at >= ?", (moment,)))

    def latest_arrival(self) -> str | None:
        """When the latest papers came into the index, as far as recorded."""
        with self._connected() as db:
            return db.execute("SELECT max(at) FROM arrivals").fetchone()[0]

    def known(self, papers: Iterable[str]) -> set[str]:
        """Which of these papers have an arrival recorded."""
        papers = list(papers)
        found: set[str] = set()
        with self._connected() as db:
            for start in range(0, len(papers), 500):
                chunk = papers[start:start + 500]
                found.update(p for (p,) in db.execute(
                    f"SELECT paper FROM arrivals WHERE paper IN ({','.join('?' * len(chunk))})",
                    chunk))
        return found

    def count_arrivals(self) -> int:
        with self._connected() as db:
            return int(db.execute("SELECT count(*) FROM arrivals").fetchone()[0])

    # -- saved searches -----------------------------------------------------------------------

    def save_search(self, name: str, query: str, options: str) -> None:
        with self._connected(write=True) as db:
            db.execute("INSERT INTO searches (name, query, options, created) VALUES "
                       "(?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET query = excluded.query, "
                       "options = excluded.options", (name, query, options, now()))

    def searches(self) -> list[SavedSearch]:
        with self._connected() as db:
            return [SavedSearch(*row) for row in db.execute(
                "SELECT name, query, options, created FROM searches ORDER BY name")]

    def forget_search(self, name: str) -> bool:
        with self._connected(write=True) as db:
            return db.execute("DELETE FROM searches WHERE name = ?", (name,)).rowcount > 0


def _tag_key(tag: str) -> str:
    """Tags compare in any case, accents and spacing: "Graph RAG" is "graph rag"."""
    key = fold(tag)
    if not key:
        raise QueryError(f"a tag needs letters or digits, not {tag!r}")
    return key


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Run the migrations the file has not run yet, each in its own transaction."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(f"{path}: the reader's tags were written by a newer semsearch "
                         f"(schema {version}, this one knows {len(MIGRATIONS)}); upgrade it")
    for number in range(version, len(MIGRATIONS)):
        db.execute("BEGIN IMMEDIATE")
        try:
            if int(db.execute("PRAGMA user_version").fetchone()[0]) == number:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _empty() -> sqlite3.Connection:
    """An empty state, for reading before anything was ever written (no file is made)."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    _migrate(db, Path(":memory:"))
    return db
