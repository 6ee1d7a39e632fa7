"""The Document and Hit types that cross every module boundary, and the rules for ids and duplicates.

Kept free of heavy imports: everything else imports this module.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

#: the longest title and abstract kept: the model reads a paper's first 256 word pieces (about
#: 1,500 characters), BM25 a long abstract's words; a longer text is cut (and the cut counted)
MAX_TITLE_CHARS = 2_000
MAX_ABSTRACT_CHARS = 20_000
#: the longest query read: a pasted abstract fits
MAX_QUERY_CHARS = 20_000

_WORD_RUN = re.compile(r"[^\W_]+")
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z][a-z.-]*(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_ASCII_PUNCTUATION_TO_SPACE = str.maketrans(
    {chr(c): " " for c in range(128) if not chr(c).isalnum()})


@dataclass(frozen=True)
class Document:
    """One paper as read from a source.

    ``metadata`` holds what the source knows beyond the text: ``year`` (int), ``authors`` and
    ``categories`` (lists of str), ``aliases`` (the source's other names for the paper, such as
    a citation key or a Zotero item key where the DOI became the id: a paper is found by any of
    them), ``arxiv_id``, ``doi``, ``url``.
    """

    id: str
    title: str
    abstract: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """What the model reads: title and abstract as one text, as BEIR/MTEB evaluate it."""
        return f"{self.title} {self.abstract}".strip()

    @property
    def link(self) -> str | None:
        """Where to read the paper: arXiv for an arXiv id, doi.org for a DOI (the id or a
        ``doi`` field), else a ``url`` the source gave."""
        return link_for(self.id, self.metadata)

    def to_json(self) -> dict[str, Any]:
        """Flat JSON object: id, title, what is known about the paper, its link, its abstract."""
        return {"id": self.id, "title": self.title, **self.metadata, "link": self.link,
                "abstract": self.abstract}

    @property
    def content_key(self) -> str:
        """Equal for two documents that say the same thing, whatever their ids or spacing."""
        return self.duplicate_keys[1]

    @functools.cached_property
    def duplicate_keys(self) -> tuple[str, str]:
        """(normalised title, content key): what title lookups and duplicate checks compare.

        Computed once, and kept with the document when it is pickled, so a worker process
        that reads a document can also pay for its keys (the costliest part of staging).
        """
        title = normalise_text(self.title)
        return title, _digest(title + "\n" + normalise_text(self.abstract))


@dataclass(frozen=True)
class Explanation:
    """Why a paper was found: the sentence of its abstract closest to the query in meaning,
    and the query's words that it contains (the ones BM25 matched)."""

    sentence: str
    sentence_score: float
    matched_terms: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "sentence_score": round(self.sentence_score, 6),
                "matched_terms": self.matched_terms}


@dataclass(frozen=True)
class Reason:
    """Why a paper was recommended: the tag it is for, and the paper of that tag it is
    closest to (its id, title and cosine similarity); papers folded into it as the same
    paper (another version or source of it)."""

    tag: str
    closest_id: str
    closest_title: str
    similarity: float
    folded: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "closest": {"id": self.closest_id, "title": self.closest_title},
                "similarity": round(self.similarity, 6), "folded": list(self.folded)}


@dataclass(frozen=True)
class Hit:
    """One search result.

    ``score`` is what the results are ordered by, so it falls with the rank: in ``hybrid``
    search (the default) the fused score, from 0 to 1 (``search.fusion.HYBRID_SCALE``); in
    ``dense`` search the cosine similarity of the query and the paper; in ``lexical`` search the
    BM25 score; for ``like``, the fused score (hybrid) or the similarity to the direction
    learned from the papers given. ``cosine`` is the cosine similarity of the query (for
    ``like``: the liked papers' mean) and the paper by the model, comparable across queries:
    None where no vector took part (lexical search).
    """

    rank: int
    id: str
    title: str
    score: float
    abstract: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    explanation: Explanation | None = None
    cosine: float | None = None
    #: for a recommendation: the tag it is for and the tagged paper it is closest to
    reason: Reason | None = None

    @property
    def link(self) -> str | None:
        return link_for(self.id, self.metadata)

    def to_json(self) -> dict[str, Any]:
        """Flat JSON object: rank, id, title, score (and cosine), what is known about the
        paper, its link and its abstract."""
        record: dict[str, Any] = {"rank": self.rank, "id": self.id, "title": self.title,
                                  "score": round(self.score, 6)}
        if self.cosine is not None:
            record["cosine"] = round(self.cosine, 6)
        for key, value in self.metadata.items():
            record.setdefault(key, value)
        record["link"] = self.link
        record["abstract"] = self.abstract
        if self.explanation is not None:
            record["explain"] = self.explanation.to_json()
        if self.reason is not None:
            record["reason"] = self.reason.to_json()
        return record


def link_for(doc_id: str, metadata: dict[str, Any]) -> str | None:
    """A web address for a paper from its id or metadata, or None: arXiv for an arXiv id (the
    id, or an ``arxiv_id`` the source gave, such as a BibTeX ``eprint``), doi.org for a DOI,
    else a ``url``."""
    for candidate in (doc_id, str(metadata.get("arxiv_id") or "")):
        if _ARXIV_ID.match(candidate.strip()):
            return f"https://arxiv.org/abs/{candidate.strip()}"
    for candidate in (doc_id, str(metadata.get("doi") or "")):
        if match := _DOI.match(candidate.strip()):
            return f"https://doi.org/{match.group(1)}"
    url = str(metadata.get("url") or "").strip()
    return url if url.startswith(("http://", "https://")) else None


def normalise_text(text: str) -> str:
    """Case-, accent-form- and punctuation-insensitive form used for ids and duplicate keys."""
    if text.isascii():  # the common case, four times faster; the same result
        return " ".join(text.lower().translate(_ASCII_PUNCTUATION_TO_SPACE).split())
    # the runs of letters and digits, joined: the same as replacing the rest by spaces and
    # collapsing them, at about two thirds of the cost
    return " ".join(_WORD_RUN.findall(unicodedata.normalize("NFKC", text).casefold()))


def title_id(title: str) -> str:
    """A stable id for a source that has none: the same title always gives the same id."""
    return "title-" + _digest(normalise_text(title))[:12]


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
