"""Reading corpora: one module per format, chosen here by name or detected from the file.

Every reader streams: it yields one Document at a time and never holds a whole file.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from semsearch.documents import MAX_ABSTRACT_CHARS, MAX_TITLE_CHARS, Document, title_id
from semsearch.errors import InputError
from semsearch.readers import arxiv, beir, bibtex, feed, records
from semsearch.readers.text import input_suffix, open_input

#: name -> function(path, options) yielding Documents
FORMATS: dict[str, Callable[[Path, "ReadOptions"], Iterator[Document]]] = {
    "feed": feed.read,
    "bibtex": bibtex.read,
    "jsonl": records.read_jsonl,
    "csv": records.read_csv,
    "beir": beir.read,
    "arxiv": arxiv.read,
}


@dataclass
class ReadOptions:
    """How to read: field names to look for, and whether a bad record stops the run."""

    id_field: str | None = None
    title_field: str | None = None
    abstract_field: str | None = None
    skip_bad: bool = False
    #: bad records passed over when ``skip_bad`` is set, in the order met
    skipped: list[InputError] = field(default_factory=list)
    #: passages of a page read as neither a paper nor page chrome (a title with nothing
    #: after it, say), in the order met: nothing was made of them
    unread: list[InputError] = field(default_factory=list)
    #: papers whose title or abstract was cut to its bound (``documents.MAX_*_CHARS``)
    cut: int = 0
    #: (file, the format it was read as) for every file read
    read_as: list[tuple[str, str]] = field(default_factory=list)

    def bad(self, error: InputError) -> None:
        """Raise, or note and carry on, as the user asked."""
        if not self.skip_bad:
            raise error
        self.skipped.append(error)

    def passed_over(self, passage: InputError) -> None:
        """Note a passage that was not read as a paper, for the report."""
        self.unread.append(passage)


def read_documents(paths: Iterable[str | Path], format: str | None = None,
                   options: ReadOptions | None = None) -> Iterator[Document]:
    """Documents from every file in ``paths``, in order; the format is detected per file."""
    options = options or ReadOptions()
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError(str(path), None, "no such file" if not path.exists() else "not a file")
        name = format or detect_format(path)
        if name not in FORMATS:
            raise InputError(str(path), None,
                             f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
        options.read_as.append((str(path), name))
        for document in FORMATS[name](path, options):
            yield _bounded(document, options)


#: characters no paper's text holds: NUL and the other control characters but tab and newline
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _bounded(document: Document, options: ReadOptions) -> Document:
    """The document with control characters taken out, its title and abstract cut to their
    bounds: the model reads the first 256 word pieces, and BM25 needs no more than a long
    abstract, so a record of megabytes costs what a long abstract costs."""
    changes = {}
    for name in ("id", "title", "abstract"):
        text = getattr(document, name)
        if _CONTROL.search(text):
            changes[name] = " ".join(_CONTROL.sub(" ", text).split())
    if changes.get("id") == "":  # an id that was nothing but control characters
        changes["id"] = title_id(changes.get("title", document.title))
    cut = False
    for name, limit in (("title", MAX_TITLE_CHARS), ("abstract", MAX_ABSTRACT_CHARS)):
        text = changes.get(name, getattr(document, name))
        if len(text) > limit:
            changes[name], cut = text[:limit], True
    options.cut += cut
    return dataclasses.replace(document, **changes) if changes else document


def detect_format(path: Path) -> str:
    """Guess from the extension and, for JSON lines, from the first record's keys."""
    suffix = input_suffix(path)
    if suffix in {".csv", ".tsv"}:
        return "csv"
    if suffix == ".bib":
        return "bibtex"
    first = _first_line(path)
    if first.startswith("@"):
        return "bibtex"
    if first.startswith("{"):
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            return "jsonl"  # the JSONL reader reports the bad line properly
        if isinstance(record, dict):
            if "_id" in record and "text" in record:
                return "beir"
            if "abstract" in record and ({"versions", "update_date", "authors_parsed"} & record.keys()):
                return "arxiv"
        return "jsonl"
    if suffix in {".jsonl", ".json", ".ndjson"}:
        return "jsonl"
    return "feed"


def _first_line(path: Path) -> str:
    with open_input(path) as handle:
        for raw in handle:
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                return line
    return ""
