"""The arXiv metadata snapshot: millions of JSON lines with id, title, abstract, authors,
categories and version dates. Year, categories and authors are kept as metadata.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.documents import Document
from semsearch.readers import parallel
from semsearch.readers.text import (MAX_ID_CHARS, BadField, parse_labels, parse_names,
                                    parse_year, text_of)

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions


def read(path: Path, options: ReadOptions) -> Iterator[Document]:
    reader = parallel.documents_in_workers if parallel.worth_parallel(path) \
        else parallel.documents_on_one_core
    yield from reader(path, to_document, options)


def to_document(record: dict[str, Any]) -> Document | str:
    """The Document, or the reason the record cannot be one."""
    try:
        doc_id = text_of(record.get("id"), "id", numbers=True, limit=MAX_ID_CHARS)
        title = text_of(record.get("title"), "title")
        abstract = text_of(record.get("abstract"), "abstract")
    except BadField as error:
        return str(error)
    if not doc_id:
        return "no id field"
    if not title and not abstract:
        return f"paper {doc_id}: no title and no abstract"
    metadata: dict[str, Any] = {}
    if year := first_year(record):
        metadata["year"] = year
    if categories := parse_labels(record.get("categories")):
        metadata["categories"] = categories
    if authors := author_names(record):
        metadata["authors"] = authors
    return Document(id=doc_id, title=title, abstract=abstract, metadata=metadata)


def first_year(record: dict[str, Any]) -> int | None:
    """Year of the first version (when the paper appeared), else of the last update."""
    versions = record.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        if year := parse_year(versions[0].get("created")):
            return year
    return parse_year(record.get("update_date"))


def author_names(record: dict[str, Any]) -> list[str]:
    """"First Last" names from ``authors_parsed`` ([last, first, suffix]) when present."""
    parsed = record.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for parts in parsed:
            if isinstance(parts, list) and parts:
                last, first = parts[0], parts[1] if len(parts) > 1 else ""
                suffix = parts[2] if len(parts) > 2 else ""
                names.append(" ".join(p for p in (first, last, suffix) if p).strip())
        if names:
            return names
    return parse_names(record.get("authors"))
