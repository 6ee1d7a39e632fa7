"""A BEIR ``corpus.jsonl``: ``{"_id", "title", "text"[, "metadata"]}`` per line.

Ids are kept exactly as given, so search results can be scored against BEIR relevance judgments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.documents import Document
from semsearch.errors import InputError
from semsearch.readers.text import MAX_ID_CHARS, BadField, json_records, text_of

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions


def read(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, record in json_records(path, options):
        try:
            doc_id = text_of(record.get("_id"), "_id", numbers=True, limit=MAX_ID_CHARS)
            title = text_of(record.get("title"), "title")
            text = text_of(record.get("text"), "text")
        except BadField as error:
            options.bad(InputError(str(path), number, str(error)))
            continue
        if not doc_id:
            options.bad(InputError(str(path), number, "no _id field"))
            continue
        if not text and not title:
            options.bad(InputError(str(path), number,
                                   f"document {doc_id}: no title and no abstract (text)"))
            continue
        yield Document(id=doc_id, title=title, abstract=text)
