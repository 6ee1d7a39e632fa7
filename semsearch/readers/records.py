"""JSONL and CSV exports with one paper per record, whatever the tool that wrote them called its
fields: common names are recognised, and ``--id-field`` / ``--title-field`` / ``--abstract-field``
map the rest.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.documents import Document, title_id
from semsearch.errors import InputError
from semsearch.readers.text import (MAX_ID_CHARS, MAX_LINE_BYTES, BadField, input_suffix,
                                    json_records, numbered_lines, parse_labels, parse_names,
                                    parse_tags, parse_year, text_of)

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions

#: Field names recognised without flags, in order of preference (compared in any case).
#: The DOI comes before Zotero's item key, which is only unique within one library.
ID_NAMES = ("id", "_id", "doc_id", "docid", "paper_id", "paperid", "arxiv_id", "doi", "key")
#: a source's own names for a paper that are never its id, but name it all the same
ALIAS_NAMES = ("citation_key", "citation key", "citekey", "bibtex_key")
TITLE_NAMES = ("title", "paper_title", "name")
ABSTRACT_NAMES = ("abstract", "abstract note", "summary", "text", "body", "description",
                  "paperabstract")
YEAR_NAMES = ("year", "publication year", "published", "publication_date", "date",
              "update_date")
AUTHOR_NAMES = ("authors", "author", "creators")
CATEGORY_NAMES = ("categories", "category", "subjects")
URL_NAMES = ("url", "link", "pdf_url")
#: every one of these that a record has adds to its tags (Zotero has two)
TAG_NAMES = ("tags", "keywords", "manual tags", "automatic tags")


def read_jsonl(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, record in json_records(path, options):
        document = to_document(record, path, number, options)
        if document is not None:
            yield document


#: the longest CSV field read (the csv module's own limit, 128 KiB, is shorter than some
#: abstracts); a field can only grow past it through an unterminated quote
MAX_CSV_FIELD = MAX_LINE_BYTES


def read_csv(path: Path, options: ReadOptions) -> Iterator[Document]:
    delimiter = "\t" if input_suffix(path) == ".tsv" else ","
    numbered = numbered_lines(path, options)
    last_line = [0]

    def lines() -> Iterator[str]:
        for number, text in numbered:
            last_line[0] = number
            yield text + "\n"  # csv needs line ends inside quoted fields

    if csv.field_size_limit() < MAX_CSV_FIELD:
        csv.field_size_limit(MAX_CSV_FIELD)
    # strict: a quote that is never closed is an error, not the rest of the file in one field
    rows = csv.reader(lines(), delimiter=delimiter, strict=True)
    header = _next_row(rows, path, 1)
    if header is None:
        raise InputError(str(path), None, "the file is empty: a CSV needs a header row")
    header = [name.strip() for name in header]
    _require_columns(header, path, options)
    while True:
        first = last_line[0] + 1
        row = _next_row(rows, path, first)
        if row is None:
            return
        number = last_line[0]
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            options.bad(InputError(str(path), number,
                                   f"expected {len(header)} columns as in the header, found {len(row)}"))
            continue
        document = to_document(dict(zip(header, row)), path, number, options)
        if document is not None:
            yield document


def _next_row(rows, path: Path, first_line: int) -> list[str] | None:
    """The next record, or None at the end; a malformed one stops the file with the line it
    started on (the reader cannot find the next record after it)."""
    try:
        return next(rows, None)
    except csv.Error as error:
        reason = "a quoted field that starts here is never closed (an unterminated quote?)" \
            if "end of data" in str(error) else f"malformed CSV ({error})"
        raise InputError(str(path), first_line, reason) from None


def to_document(record: Mapping[str, Any], path: Path, line: int,
                options: ReadOptions) -> Document | None:
    """A Document from one record, or None after reporting why it is unusable.

    A record needs a title or an abstract: one without an abstract is searched by its title.
    """
    try:
        return _document(record, path, line, options)
    except BadField as error:
        options.bad(InputError(str(path), line, str(error)))
        return None


def _document(record: Mapping[str, Any], path: Path, line: int,
              options: ReadOptions) -> Document | None:
    keys = {key.lower(): key for key in record}
    found: dict[str, str] = {}
    for role, names, flag in (("title", TITLE_NAMES, "--title-field"),
                              ("abstract", ABSTRACT_NAMES, "--abstract-field")):
        wanted = options_field(options, role)
        key = _pick(keys, wanted, names)
        if wanted and key is None:
            options.bad(InputError(str(path), line, f"no {role} field {wanted!r} ({flag})"))
            return None
        found[role] = text_of(record[key], f"{role} ({key!r})") if key is not None else ""
    title, abstract = found["title"], found["abstract"]
    if not title and not abstract:
        options.bad(InputError(str(path), line, "no title and no abstract (looked for "
                                                f"{', '.join(TITLE_NAMES + ABSTRACT_NAMES)}; "
                                                "name yours with --title-field and "
                                                "--abstract-field)"))
        return None
    if options.id_field:
        id_key = _pick(keys, options.id_field, ID_NAMES)
        if id_key is None:
            options.bad(InputError(str(path), line, f"no id field {options.id_field!r}"))
            return None
        doc_id = _id_text(record[id_key], id_key)
    else:  # the first id field with a value: a Zotero item without a DOI has its key
        doc_id = next((text for name in ID_NAMES if name in keys
                       and (text := _id_text(record[keys[name]], keys[name]))), "")
    if not doc_id and not title:
        options.bad(InputError(str(path), line, "no id and no title: nothing to name the "
                                                "paper by"))
        return None
    doc_id = doc_id or title_id(title)
    metadata = _metadata(record, keys)
    aliases = [text for name in ID_NAMES + ALIAS_NAMES if name in keys
               and (text := _text(record[keys[name]])) and text != doc_id]
    if aliases:  # a Zotero item whose DOI became its id is still named by its key
        metadata["aliases"] = list(dict.fromkeys(aliases))
    return Document(id=doc_id, title=title, abstract=abstract, metadata=metadata)


def _id_text(value: Any, key: str) -> str:
    return text_of(value, f"id ({key!r})", numbers=True, limit=MAX_ID_CHARS)


def options_field(options: ReadOptions, role: str) -> str | None:
    return getattr(options, f"{role}_field")


def _require_columns(header: list[str], path: Path, options: ReadOptions) -> None:
    """Fail once, naming the header line, rather than once per row."""
    keys = {name.lower(): name for name in header}
    for role, flag in (("title", "--title-field"), ("abstract", "--abstract-field")):
        wanted = options_field(options, role)
        if wanted and wanted.lower() not in keys:
            raise InputError(str(path), 1, f"no {role} column {wanted!r} ({flag}) in the header "
                                           f"{header}")
    if _pick(keys, options.title_field, TITLE_NAMES) is None and \
            _pick(keys, options.abstract_field, ABSTRACT_NAMES) is None:
        raise InputError(str(path), 1, f"no title or abstract column in the header {header} "
                                       f"(looked for {', '.join(TITLE_NAMES + ABSTRACT_NAMES)}; "
                                       f"name yours with --title-field or --abstract-field)")


def _pick(keys: dict[str, str], wanted: str | None, names: tuple[str, ...]) -> str | None:
    if wanted:
        return keys.get(wanted.lower())
    return next((keys[name] for name in names if name in keys), None)


def _text(value: Any) -> str:
    """A metadata field's text: numbers as written, anything else not text left out."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return " ".join(value.split()) if isinstance(value, str) else ""


def _metadata(record: Mapping[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    year_key = _pick(keys, None, YEAR_NAMES)
    if year_key and (year := parse_year(record[year_key])):
        metadata["year"] = year
    author_key = _pick(keys, None, AUTHOR_NAMES)
    zotero = "item type" in keys  # its Author column is "Last, First; Last, First"
    if author_key and (authors := parse_names(record[author_key], semicolons=zotero)):
        metadata["authors"] = authors
    category_key = _pick(keys, None, CATEGORY_NAMES)
    if category_key and (categories := parse_labels(record[category_key])):
        metadata["categories"] = categories
    for field_name, names in (("doi", ("doi",)), ("url", URL_NAMES), ("arxiv_id", ("arxiv_id",))):
        key = _pick(keys, None, names)
        if key and (value := _text(record[key])):
            metadata[field_name] = value
    tags = [tag for name in TAG_NAMES if name in keys for tag in parse_tags(record[keys[name]])]
    if tags:
        metadata["tags"] = list(dict.fromkeys(tags))
    return metadata
