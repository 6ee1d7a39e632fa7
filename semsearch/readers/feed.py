"""The text of a daily-paper feed page as a browser copies it: chrome, then title/abstract lines.

Page chrome ("new", "Subscribe", a date such as "Mar 11", ...) is skipped wherever a title could
stand; then each paper is a title line followed by its abstract line, blank lines between.
Feed papers have no id, so the id is derived from the title (see ``title_id``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.documents import Document, title_id
from semsearch.errors import InputError
from semsearch.readers.text import numbered_lines

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions

_CHROME = {
    "new",
    "get trending papers in your email inbox!",
    "subscribe",
    "daily papers",
    "by ak and the research community",
    "byak and the research community",
}
_DATE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}(, \d{4})?$",
                   re.IGNORECASE)
#: a line longer than this is a paragraph, never a title
MAX_TITLE_CHARS = 400


def is_chrome(line: str) -> bool:
    text = " ".join(line.split()).lower()
    return text in _CHROME or bool(_DATE.match(text))


def read(path: Path, options: ReadOptions) -> Iterator[Document]:
    title: tuple[int, str] | None = None
    for number, line in numbered_lines(path, options):
        line = line.strip()
        if not line:
            continue
        if title is None:
            if is_chrome(line):
                continue
            if len(line) > MAX_TITLE_CHARS:
                options.bad(InputError(str(path), number,
                                       f"expected a title line, found a paragraph of {len(line)} "
                                       "characters (an abstract without its title?)"))
                continue
            title = (number, line)
            continue
        title_text = title[1]
        title = None
        yield Document(id=title_id(title_text), title=title_text, abstract=line)
    if title is not None:
        options.bad(InputError(str(path), title[0], f"title {title[1]!r} has no abstract after it"))
