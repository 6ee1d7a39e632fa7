"""The text of a daily-paper feed page as a browser copies it: page chrome, then each paper as
a title line followed by its abstract.

A page holds more than papers (menus, "Trending Papers", upvote counts, "Submitted by ...",
dates), and sites change it without notice, so papers are found by their shape rather than by
a list of everything else: an abstract is a paragraph of prose, and a paper's title is the
last line that could be a title before it. Lines that could be titles but are followed by no
abstract are chrome, and are passed over. (So a paper without an abstract cannot be told from
chrome on such a page; other formats index such papers by title.)
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

#: lines of the page itself, never a title (compared in lower case, spacing folded)
_CHROME = {
    "new", "subscribe", "daily papers", "trending papers", "trending", "upvote", "upvotes",
    "load more", "sign in", "log in", "sign up", "get trending papers in your email inbox!",
    "by ak and the research community", "byak and the research community", "view", "share",
    "pdf", "code", "comments", "collections", "search", "models", "datasets", "spaces",
}
_CHROME_PATTERNS = re.compile(
    r"^(?:(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}(, \d{4})?"
    r"|submitted by\b.*|published on\b.*|\d[\d,.]*\s*(k|upvotes?|comments?|authors?|likes?)?)$",
    re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SENTENCE_END = re.compile(r"[^\W_)\]%]\.(?:\s|$)")
#: a line longer than this is a paragraph, never a title
MAX_TITLE_CHARS = 400
#: an abstract has at least this many words, or several sentences
PROSE_WORDS = 25


def is_chrome(line: str) -> bool:
    text = " ".join(line.split()).lower()
    return text in _CHROME or bool(_CHROME_PATTERNS.match(text)) or \
        len(_LETTER.findall(text)) < 2


def is_prose(line: str) -> bool:
    """Whether a line reads as an abstract: long, or several sentences of some length."""
    words = len(line.split())
    if words >= PROSE_WORDS or len(line) > MAX_TITLE_CHARS:
        return True
    return words >= 15 and len(_SENTENCE_END.findall(line)) >= 2


def read(path: Path, options: ReadOptions) -> Iterator[Document]:
    title: str | None = None
    for number, line in numbered_lines(path, options):
        line = line.strip()
        if not line:
            continue
        if is_prose(line):
            if title is None:
                options.bad(InputError(str(path), number,
                                       f"a paragraph of {len(line)} characters with no title "
                                       "line before it (an abstract without its title?)"))
                continue
            yield Document(id=title_id(title), title=title, abstract=line)
            title = None
        elif not is_chrome(line):
            title = line
