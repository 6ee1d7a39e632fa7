"""A BEIR ``corpus.jsonl``: ``{"_id", "title", "text"[, "metadata"]}`` per line.

Ids are kept exactly as given, so search results can be scored against BEIR relevance judgments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.documents import Document
from semsearch.errors import InputError
from semsearch.readers.text import json_records

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions


def read(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, record in json_records(path, options):
        raw_id = record.get("_id")
        doc_id = "" if raw_id is None else str(raw_id).strip()
        if not doc_id:
            options.bad(InputError(str(path), number, "no _id field"))
            continue
        title = " ".join(str(record.get("title") or "").split())
        text = " ".join(str(record.get("text") or "").split())
        if not text and not title:
            options.bad(InputError(str(path), number,
                                   f"document {doc_id}: no title and no abstract (text)"))
            continue
        yield Document(id=doc_id, title=title, abstract=text)
