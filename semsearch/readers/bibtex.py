"""BibTeX files (.bib), as reference managers export them, read with bibtexparser.

bibtexparser handles the syntax (nested braces, @string macros, comments); its middlewares
turn LaTeX accents into Unicode and split author lists. The id is the DOI when there is one,
else the citation key; year, authors and keywords are kept as metadata.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.documents import Document
from semsearch.errors import InputError
from semsearch.readers.text import open_input, parse_tags, parse_year

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions

_BRACES = re.compile(r"[{}]")


def read(path: Path, options: ReadOptions) -> Iterator[Document]:
    import bibtexparser
    from bibtexparser import middlewares

    with open_input(path) as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        options.bad(InputError(str(path), line, "bytes that are not UTF-8"))
        text = raw.decode("utf-8", errors="replace")
    logger = logging.getLogger("bibtexparser")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its warnings about bad blocks become our own errors
    try:
        library = bibtexparser.parse_string(text, append_middleware=[
            middlewares.LatexDecodingMiddleware(), middlewares.SeparateCoAuthors(),
            middlewares.SplitNameParts(), middlewares.MergeNameParts(style="first")])
    finally:
        logger.setLevel(level)
    problems = [(block.start_line + 1, f"cannot parse this @{_kind(block)} entry")
                for block in library.failed_blocks]
    documents = []  # held back so that problems, in line order, are reported first
    for entry in library.entries:
        fields = {name.lower(): field.value for name, field in entry.fields_dict.items()}
        line = entry.start_line + 1
        title = _clean(fields.get("title"))
        abstract = _clean(fields.get("abstract"))
        if not title and not abstract:
            problems.append((line, f"entry {entry.key}: no title and no abstract"))
            continue
        metadata = {"bibtex_key": entry.key, "type": entry.entry_type}
        if year := parse_year(fields.get("year") or fields.get("date")):
            metadata["year"] = year
        authors = fields.get("author")
        if authors:
            names = [_clean(name) for name in (authors if isinstance(authors, list) else [authors])]
            metadata["authors"] = [name for name in names if name]
        if tags := parse_tags(_clean(fields.get("keywords"))):
            metadata["tags"] = tags
        doi = _clean(fields.get("doi"))
        documents.append(Document(id=doi or entry.key, title=title, abstract=abstract,
                                  metadata=metadata))
    for line, problem in sorted(problems):
        options.bad(InputError(str(path), line, problem))
    yield from documents


def _clean(value) -> str:
    """Text without the braces BibTeX uses to protect case, on one line."""
    return " ".join(_BRACES.sub("", str(value or "")).split())


def _kind(block) -> str:
    raw = getattr(block, "raw", "") or ""
    match = re.match(r"\s*@(\w+)", raw)
    return match.group(1).lower() if match else "unknown"
