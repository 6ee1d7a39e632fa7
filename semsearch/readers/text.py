"""Line-level reading shared by the text formats: numbered, decoded one line at a time.

Decoding per line (not per file) is what lets an error name the line with the bad bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from semsearch.errors import InputError

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions

_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")


GZIP_MAGIC = b"\x1f\x8b"
BYTE_ORDER_MARK = b"\xef\xbb\xbf"
#: the longest line (a JSON record, a line of a page or of a CSV) read; a longer one is a bad
#: record, passed over without holding it in memory
MAX_LINE_BYTES = 16 << 20
#: the longest id a paper may have (it is shown, typed and stored in every index row)
MAX_ID_CHARS = 1_000
_JSON_TYPES = {dict: "an object", list: "a list", bool: "true or false", float: "a number",
               int: "a number"}


class BadField(ValueError):
    """A field of a record that cannot be a paper's text: the reason, for the record's error."""


def text_of(value: Any, what: str, numbers: bool = False, limit: int | None = None) -> str:
    """A field's text, spaces folded; None is empty. Anything else that is not text (a list,
    an object, true; a number unless ``numbers``) is a bad record, not its Python form."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif numbers and isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise BadField(f"the {what} is {_JSON_TYPES.get(type(value), type(value).__name__)}, "
                       f"not text")
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        raise BadField(f"the {what} is {len(text):,} characters long; at most {limit:,}")
    return text


def open_input(path: Path) -> BinaryIO:
    """The bytes of an input file: gunzipped as they are read if it is gzip-compressed (the
    arXiv snapshot is often kept so), and without a UTF-8 byte-order mark at its start."""
    handle = io.BufferedReader(io.FileIO(path))
    try:
        if handle.peek(2)[:2] == GZIP_MAGIC:
            handle = io.BufferedReader(gzip.GzipFile(fileobj=handle, mode="rb"))
        if handle.peek(3)[:3] == BYTE_ORDER_MARK:
            handle.read(3)
    except (OSError, EOFError) as error:
        handle.close()
        raise InputError(str(path), None, f"cannot read the file ({error})") from None
    return handle


def input_suffix(path: Path) -> str:
    """The file's format extension, under a .gz one: '.jsonl' for papers.jsonl.gz."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def bounded_lines(handle: BinaryIO, limit: int = MAX_LINE_BYTES
                  ) -> Iterator[tuple[int, bytes | None]]:
    """(line number, its bytes) for every line; None for a line over ``limit`` bytes, which is
    read past in blocks, never held whole."""
    number = 0
    while True:
        raw = handle.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (more := handle.readline(1 << 20)) and not more.endswith(b"\n"):
                pass
            yield number, None
        else:
            yield number, raw


def too_long(limit: int = MAX_LINE_BYTES) -> str:
    return f"a line of over {limit >> 20} MB: too long to be a paper (not read)"


def numbered_lines(path: Path, options: ReadOptions) -> Iterator[tuple[int, str]]:
    """(line number, text without its newline) for every line that decodes as UTF-8."""
    with open_input(path) as handle:
        for number, raw in bounded_lines(handle):
            if raw is None:
                options.bad(InputError(str(path), number, too_long()))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                options.bad(InputError(str(path), number,
                                       f"bytes that are not UTF-8 at column {error.start + 1}"))
                continue
            yield number, text.rstrip("\r\n")


def json_records(path: Path, options: ReadOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON-lines file."""
    with open_input(path) as handle:
        for number, raw in bounded_lines(handle):
            record = json_record(raw) if raw is not None else too_long()
            if isinstance(record, str):
                options.bad(InputError(str(path), number, record))
            elif record is not None:
                yield number, record


def json_record(raw: bytes) -> dict[str, Any] | str | None:
    """The object on one line; None for a blank line; or a string saying what is wrong.

    orjson parses the raw bytes (and checks they are UTF-8) in one step. A line it rejects
    goes to the standard library, which accepts a little more (NaN, huge integers) and says
    plainly what is wrong with the rest.
    """
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if not raw.strip():
            return None
        record = _parse_plainly(raw)
        if isinstance(record, str):
            return record
    if not isinstance(record, dict):
        return "expected a JSON object on each line"
    return record


def _parse_plainly(raw: bytes) -> Any:
    """The parsed line, or a string saying why it cannot be parsed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"bytes that are not UTF-8 at column {error.start + 1}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error.msg})"
    try:  # the standard library takes an escaped lone surrogate ("\udce9"), no character
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"an escaped lone surrogate (\\u{ord(error.object[error.start]):04x}) in the "
                f"text: not a character")
    return record


def parse_year(value: Any) -> int | None:
    """The first plausible year in a date-ish value (2023, "2023-05-01", "Mon, 2 Apr 2007")."""
    if isinstance(value, int) and 1800 <= value <= 2100:
        return value
    match = _YEAR.search(str(value)) if value else None
    return int(match.group(1)) if match else None


def parse_names(value: Any, semicolons: bool = False) -> list[str]:
    """Authors from a list, from "A, B and C" as most exports write them, or from
    "Last, First; Last, First" as Zotero does (``semicolons``, or any semicolon: then commas
    are inside names, and each becomes "First Last")."""
    if isinstance(value, list):
        return [str(name).strip() for name in value if str(name).strip()]
    if not value:
        return []
    text = re.sub(r"\s+", " ", str(value))
    if not (semicolons or ";" in text):
        return [part.strip() for part in re.split(r",\s*|\s+and\s+", text) if part.strip()]
    names = [part.strip() for part in text.split(";") if part.strip()]
    return [first_then_last(name) for name in names]


def first_then_last(name: str) -> str:
    """"Ashish Vaswani" from "Vaswani, Ashish" (as the other formats write names)."""
    last, comma, given = name.partition(",")
    return f"{given.strip()} {last.strip()}".strip() if comma and given.strip() else name


def parse_tags(value: Any) -> list[str]:
    """Tags from a list, or a string of them separated by semicolons (Zotero) or commas
    (BibTeX keywords); a tag may hold spaces ("deep learning")."""
    if isinstance(value, list):
        return [str(tag).strip() for tag in value if str(tag).strip()]
    text = " ".join(str(value or "").split())
    separator = ";" if ";" in text else ","
    return [tag.strip() for tag in text.split(separator) if tag.strip()]


def parse_labels(value: Any) -> list[str]:
    """Categories from a list, or a space-, comma- or semicolon-separated string."""
    if isinstance(value, list):
        return [str(label).strip() for label in value if str(label).strip()]
    return [label for label in re.split(r"[\s,;]+", str(value or "")) if label]
