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

from semsearch.documents import MAX_ABSTRACT_CHARS, Document
from semsearch.errors import InputError
from semsearch.readers.text import open_input, parse_tags, parse_year

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions

_BRACES = re.compile(r"[{}]")
_ARXIV_SHAPE = re.compile(r"^(\d{4}\.\d{4,5}|[a-z][a-z.-]*/\d{7})(v\d+)?$")
_ENTRY_START = re.compile(r"^[ \t]*@", re.MULTILINE)
#: the longest entry parsed, and the longest field value decoded
MAX_ENTRY_CHARS = 1 << 20
MAX_FIELD_CHARS = 2 * MAX_ABSTRACT_CHARS


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
    text, problems = _without_huge_entries(text)
    logger = logging.getLogger("bibtexparser")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its warnings about bad blocks become our own errors
    try:
        library = bibtexparser.parse_string(text)
        _cut_long_fields(library)  # before LaTeX decoding, whose cost grows faster than a field
        for middleware in (middlewares.LatexDecodingMiddleware(),
                           middlewares.SeparateCoAuthors(), middlewares.SplitNameParts(),
                           middlewares.MergeNameParts(style="first")):
            library = middleware.transform(library)
    finally:
        logger.setLevel(level)
    problems += [(block.start_line + 1, f"cannot parse this @{_kind(block)} entry")
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
        if doi:  # the DOI is the id: the citation key still names the paper
            metadata["aliases"] = [entry.key]
        if arxiv_id := _arxiv_id(fields):
            metadata["arxiv_id"] = arxiv_id
        if url := _clean(fields.get("url")):
            metadata["url"] = url
        documents.append(Document(id=doi or entry.key, title=title, abstract=abstract,
                                  metadata=metadata))
    for line, problem in sorted(problems):
        options.bad(InputError(str(path), line, problem))
    yield from documents


def _without_huge_entries(text: str) -> tuple[str, list[tuple[int, str]]]:
    """The text with every entry longer than MAX_ENTRY_CHARS blanked (its lines kept, so line
    numbers hold), and a problem for each: the parser's cost grows faster than an entry's
    length, and no paper's record is that long."""
    starts = [match.start() for match in _ENTRY_START.finditer(text)] + [len(text)]
    problems, parts, last = [], [], 0
    for start, end in zip(starts, starts[1:]):
        if end - start > MAX_ENTRY_CHARS:
            line = text.count("\n", 0, start) + 1
            problems.append((line, f"an entry of {end - start:,} characters: at most "
                                   f"{MAX_ENTRY_CHARS:,} (not read)"))
            parts += [text[last:start], "\n" * text.count("\n", start, end)]
            last = end
    if not problems:
        return text, []
    return "".join(parts + [text[last:]]), problems


def _cut_long_fields(library) -> None:
    """Every field's value cut to MAX_FIELD_CHARS (the title and abstract are cut to their own
    bounds later, and counted)."""
    for entry in library.entries:
        for field in entry.fields:
            if isinstance(field.value, str) and len(field.value) > MAX_FIELD_CHARS:
                field.value = field.value[:MAX_FIELD_CHARS]


def _arxiv_id(fields: dict) -> str:
    """The arXiv id of an ``eprint`` field (with ``archivePrefix = {arXiv}``, or shaped like
    one), without its "arXiv:" prefix; empty if there is none."""
    eprint = _clean(fields.get("eprint"))
    eprint = re.sub(r"^arxiv:\s*", "", eprint, flags=re.IGNORECASE)
    prefix = _clean(fields.get("archiveprefix") or fields.get("eprinttype")).lower()
    if eprint and (prefix == "arxiv" or _ARXIV_SHAPE.match(eprint)):
        return eprint
    return ""


def _clean(value) -> str:
    """Text without the braces BibTeX uses to protect case, on one line."""
    return " ".join(_BRACES.sub("", str(value or "")).split())


def _kind(block) -> str:
    raw = getattr(block, "raw", "") or ""
    match = re.match(r"\s*@(\w+)", raw)
    return match.group(1).lower() if match else "unknown"
