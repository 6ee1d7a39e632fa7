"""The text of a page of papers as a browser copies it: a daily paper feed, an arXiv listing
(arxiv.org/list/...), an arXiv abstract page (arxiv.org/abs/...), or several pasted together.

A page holds more than papers (menus, "Trending Papers", upvote counts, "Submitted by ...",
dates), and sites change it without notice, so papers are found by their shape rather than by
a list of everything else: an abstract is a paragraph of prose, and a paper's title is the
last line that could be a title before it. A line that could be a title but is followed by no
abstract is passed over and reported (``ReadOptions.unread``), as is any other passage read
as neither a paper nor page chrome.

arXiv's pages label what they show: ``Title:``, ``Authors:``, ``Comments:``, ``Subjects:``,
``Journal-ref:``, ``DOI:``, ``Abstract:``, and a line ``[1] arXiv:2412.01234 [pdf, other]``
before each paper of a listing. Those lines are read for what they carry (the paper's arXiv id,
which becomes its id and link, its authors and categories, its comments and journal
reference), never taken for a title. A labelled paper needs no abstract (a listing without
abstracts gives its papers by title); on an unlabelled page a paper needs one, but one
sentence will do.
Papers without an arXiv id have no id of their own: it is derived from the title
(``title_id``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.documents import Document, title_id
from semsearch.errors import InputError
from semsearch.readers.text import numbered_lines, parse_names

if TYPE_CHECKING:
    from semsearch.readers import ReadOptions

#: lines of the page itself, never a title (compared in lower case, spacing folded)
_CHROME = {
    "new", "subscribe", "daily papers", "trending papers", "trending", "upvote", "upvotes",
    "load more", "sign in", "log in", "sign up", "get trending papers in your email inbox!",
    "by ak and the research community", "byak and the research community", "view", "share",
    "pdf", "code", "comments", "collections", "search", "models", "datasets", "spaces",
    # arXiv's abstract and listing pages
    "submission history", "access paper:", "view pdf", "html (experimental)", "tex source",
    "other formats", "current browse context:", "change to browse by:", "references & citations",
    "export bibtex citation", "bookmark", "bibliographic tools", "code, data, media",
    "demos", "related papers", "about arxivlabs", "full-text links:", "download:",
    "focus to learn more",
}
_CHROME_PATTERNS = re.compile(
    r"^(?:(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}(, \d{4})?"
    r"|submitted by\b.*|published on\b.*|\d[\d,.]*\s*(k|upvotes?|comments?|authors?|likes?)?"
    # arXiv: "[Submitted on 2 Dec 2024 (v1), ...]", "(or arXiv:2412.01234v2 [cs.CL] for this
    # version)", "From: Ada Lovelace [view email]", "[v1] Mon, 2 Dec 2024 10:00:00 UTC (1,234
    # KB)", the listing's headings, its links, and view pdf/html/other lines
    r"|\[submitted on .*\]|\(or arxiv:.*\)|from: .*\[view email\]|\[v\d+\] .*"
    r"|total of \d+ entries.*"
    r"|\[\s*(pdf|html|ps|other|src|abs|view pdf)(\s*,\s*(pdf|html|ps|other|src|abs))*\s*\]"
    r"|view pdf\b.*|https?://\S+|doi\.org/\S+|computer science > .*|[a-z -]+ > [a-z ,-]+)$",
    re.IGNORECASE)
#: the headings of an arXiv listing: "New submissions (showing 12 of 12 entries)", "Fri, 6 Dec
#: 2024 (showing 40 of 40 entries)", "Authors and titles for recent submissions"; the archive's
#: name ("Computation and Language") is the line before the first of them
_LISTING_HEADING = re.compile(r"^(?:.*\(showing \d+ of \d+ entries\)|authors and titles for .*)$",
                              re.IGNORECASE)
#: a labelled line of an arXiv page: its label and what it says
_LABEL = re.compile(r"^(title|authors?|comments|subjects|journal-ref|doi|report-no|msc-class|"
                    r"acm-class|abstract|cite as|categories)\s*:\s*(.*)$", re.IGNORECASE)
#: "[1] arXiv:2412.01234 [pdf, html, other]", or a line starting with an arXiv id
_ARXIV_LINE = re.compile(r"^(?:\[\d+\]\s*)?arxiv:\s*(\d{4}\.\d{4,5}|[a-z][a-z.-]*/\d{7})"
                         r"(?:v\d+)?\b", re.IGNORECASE)
_ARXIV_ID = re.compile(r"arxiv:\s*(\d{4}\.\d{4,5}|[a-z][a-z.-]*/\d{7})", re.IGNORECASE)
_CATEGORY = re.compile(r"^[a-z-]+(?:\.[A-Za-z-]+)?$")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SENTENCE_END = re.compile(r"[^\W_)\]%]\.(?:\s|$)")
#: a line longer than this is a paragraph, never a title
MAX_TITLE_CHARS = 400
#: an abstract has at least this many words, or several sentences
PROSE_WORDS = 25
#: a line of at least this many words that ends in a full stop, right after a title, is that
#: paper's abstract even if it is one short sentence (titles do not end in a full stop)
SENTENCE_WORDS = 6


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


def is_sentence(line: str) -> bool:
    """Whether a line reads as one sentence of prose: a short abstract, not a title."""
    text = line.rstrip("\"'\u201d)")
    return text.endswith(".") and not text.endswith("..") and \
        len(line.split()) >= SENTENCE_WORDS


def _year_of(arxiv_id: str) -> int | None:
    """The year an arXiv id was given: 2412.01017 in 2024, hep-th/9901001 in 1999."""
    match = re.search(r"(?:^|/)(\d\d)(\d\d)[.\d]", arxiv_id)
    if not match:
        return None
    year = int(match.group(1))
    return 1900 + year if year >= 91 else 2000 + year


def categories_of(subjects: str) -> list[str]:
    """arXiv categories from a Subjects line: "Computation and Language (cs.CL); Machine
    Learning (cs.LG)", or the codes alone ("cs.CL cs.LG")."""
    found = [code.strip() for code in re.findall(r"\(([^()]+)\)", subjects)]
    if not found:
        found = re.split(r"[\s,;]+", subjects)
    return [code for code in found if _CATEGORY.match(code)]


@dataclass
class _Paper:
    """A paper being read: what the page has said of it so far."""

    line: int = 0
    title: str = ""
    title_line: int = 0
    #: the title came from a label or an arXiv id line, not from the shape of the page
    labelled: bool = False
    abstract: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    arxiv_id: str = ""

    @property
    def started(self) -> bool:
        return bool(self.title or self.abstract or self.arxiv_id or self.metadata)

    def document(self) -> Document:
        metadata = dict(self.metadata)
        if self.arxiv_id:
            metadata["arxiv_id"] = self.arxiv_id
            if year := _year_of(self.arxiv_id):
                metadata["year"] = year
        return Document(id=self.arxiv_id or title_id(self.title), title=self.title,
                        abstract=" ".join(self.abstract), metadata=metadata)


class _PageReader:
    """Reads one page line by line, keeping the paper being read until the next one starts."""

    def __init__(self, path: Path, options: ReadOptions):
        self.path = path
        self.options = options
        self.paper = _Paper()
        self.expecting: str | None = None  # "title" or "abstract", after an empty label
        self.last = ""                     # what the last line read was: "abstract", ...

    def read(self) -> Iterator[Document]:
        for number, raw in numbered_lines(self.path, self.options):
            line = " ".join(raw.split())
            if line:
                yield from self._line(number, line)
        yield from self._finish()

    def _line(self, number: int, line: str) -> Iterator[Document]:
        label = _LABEL.match(line)
        if label:
            yield from self._labelled(number, label.group(1).lower(), label.group(2).strip())
            return
        if arxiv := _ARXIV_LINE.match(line):
            yield from self._finish()
            self.paper = _Paper(line=number, arxiv_id=arxiv.group(1))
            self.last = "id"
            return
        if _LISTING_HEADING.match(line):
            if not self.paper.labelled and not self.paper.abstract:
                self.paper = _Paper()  # the archive's name, shown above the listing
            return
        if is_chrome(line):
            return
        expecting, self.expecting = self.expecting, None
        paper = self.paper
        if expecting == "title":
            paper.title, paper.title_line, paper.labelled = line, number, True
        elif expecting == "abstract" or is_prose(line):
            yield from self._prose(number, line)
        elif paper.title and not paper.abstract and is_sentence(line):
            paper.abstract.append(line)  # a one-sentence abstract
            self.last = "abstract"
        else:
            yield from self._title_candidate(number, line)

    def _labelled(self, number: int, label: str, value: str) -> Iterator[Document]:
        paper = self.paper
        if label == "title":
            if paper.title and (paper.labelled or paper.abstract):
                yield from self._finish()
                paper = self.paper
            elif paper.title:
                self._unread(paper.title_line, paper.title)
            paper.title, paper.title_line, paper.labelled = value, number, True
            paper.line = paper.line or number
            self.expecting = None if value else "title"
        elif label == "abstract":
            if value:
                yield from self._prose(number, value)
            else:
                self.expecting = "abstract"
        elif label in ("author", "authors"):
            if names := parse_names(value):
                paper.metadata["authors"] = names
        elif label in ("subjects", "categories"):
            if codes := categories_of(value):
                paper.metadata["categories"] = codes
        elif label == "comments" and value:
            paper.metadata["comments"] = value
        elif label == "journal-ref" and value:
            paper.metadata["journal_ref"] = value
        elif label == "doi" and value:
            paper.metadata["doi"] = value.split()[0]
        elif label == "cite as" and not paper.arxiv_id:
            if found := _ARXIV_ID.search(value):
                paper.arxiv_id = found.group(1)
        self.last = "label"

    def _prose(self, number: int, line: str) -> Iterator[Document]:
        paper = self.paper
        if paper.abstract and self.last == "abstract":
            paper.abstract.append(line)  # an abstract copied as several paragraphs
        elif paper.title and not paper.abstract:
            paper.abstract.append(line)
        else:
            if paper.abstract:  # a second abstract after a paper's own: it has no title
                yield from self._finish()
            self._no_title(number, line)
        self.last = "abstract"

    def _title_candidate(self, number: int, line: str) -> Iterator[Document]:
        paper = self.paper
        if paper.abstract or (paper.title and paper.labelled):
            yield from self._finish()
            paper = self.paper
        elif paper.arxiv_id and not paper.title:  # a listing entry whose label was lost
            paper.title, paper.title_line, paper.labelled = line, number, True
            self.last = "title"
            return
        elif paper.title:
            self._unread(paper.title_line, paper.title)
        paper.title, paper.title_line = line, number
        paper.line = paper.line or number
        self.last = "title"

    def _finish(self) -> Iterator[Document]:
        """The paper being read, if the page gave enough of it; then start the next."""
        paper, self.paper = self.paper, _Paper()
        self.expecting, self.last = None, ""
        if paper.title and (paper.abstract or paper.labelled):
            yield paper.document()
        elif paper.title:
            self._unread(paper.title_line, paper.title)
        elif paper.started:
            self._unread(paper.line, f"arXiv:{paper.arxiv_id}" if paper.arxiv_id
                         else "a paper's details with no title")

    def _no_title(self, number: int, line: str) -> None:
        self.options.bad(InputError(str(self.path), number,
                                    f"a paragraph of {len(line)} characters with no title line "
                                    "before it (an abstract without its title?)"))

    def _unread(self, number: int, text: str) -> None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        self.options.passed_over(InputError(str(self.path), number,
                                            f"read as neither a paper nor page chrome: {shown!r}"))


def read(path: Path, options: ReadOptions) -> Iterator[Document]:
    yield from _PageReader(path, options).read()
