"""The inbox's parts: which papers are new, which of them are another copy of a paper the
reader has already seen or tagged (the same paper from another source or version), and the
digest a cron job can mail.

A paper is new if it came into the index (its first commit, as ``Engine.arrivals`` tells)
after the inbox was last read, or after a date given; papers seen or tagged are never new.
It is the same paper as another if their normalised titles are equal, or if their vectors are
nearly the same and their titles alike (an arXiv version and its journal copy, a title
reworded by an export).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from semsearch.documents import Hit, normalise_text
from semsearch.errors import QueryError
from semsearch.overview.duplicates import SAME_PAPER_COSINE, titles_alike

#: papers an inbox shows unless asked otherwise
INBOX_SIZE = 20


@dataclass(frozen=True)
class Inbox:
    """What the inbox shows: the new papers ranked for the reader's tags (each with its
    reason), how many papers were new, and the ones folded into a paper already seen,
    tagged or shown (id -> the id it is the same paper as)."""

    hits: list[Hit]
    new: int
    since: str
    folded: dict[str, str] = field(default_factory=dict)
    ranked: bool = True

    def to_json(self) -> dict:
        return {"since": self.since, "new": self.new, "shown": len(self.hits),
                "ranked_for_tags": self.ranked, "folded": self.folded,
                "results": [hit.to_json() for hit in self.hits]}


def parse_since(text: str) -> str:
    """A moment as the inbox compares them (ISO 8601, UTC): a date (2026-12-01), a date and
    time, or a span back from now (3d, 12h)."""
    text = text.strip()
    spans = {"d": "days", "h": "hours", "w": "weeks"}
    if text[:-1].isdigit() and text[-1:].lower() in spans:
        moment = datetime.now(timezone.utc) - timedelta(**{spans[text[-1].lower()]:
                                                             int(text[:-1])})
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(f"--since takes a date (2026-12-01), a date and time, or a span "
                             f"back from now (3d, 12h, 2w), not {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def same_paper(title_key: str, similarity: np.ndarray, compared: np.ndarray,
               known_keys: dict[str, str], ids: list[str], titles: list[str]) -> str | None:
    """The id of a known paper this one is another copy of, or None: the same normalised
    title, or a vector nearly the same (``similarity`` to each of ``ids``, of which those
    ``compared`` count) with a title alike."""
    if title_key and title_key in known_keys:
        return known_keys[title_key]
    for at in np.flatnonzero((similarity >= SAME_PAPER_COSINE) & compared):
        if titles_alike(title_key, titles[at]):
            return ids[at]
    return None


def title_key(title: str) -> str:
    return normalise_text(title)


# -- digests ----------------------------------------------------------------------------------

def digest_markdown(inbox: Inbox, index_name: str) -> str:
    """The inbox as Markdown, for a mail or a note."""
    lines = [f"# New papers in {index_name}", "",
             f"{inbox.new} new since {inbox.since}; {len(inbox.hits)} shown"
             + (", ranked for your tags." if inbox.ranked else " (no tags yet: in the order "
                                                               "they came)."), ""]
    for hit in inbox.hits:
        title = f"[{hit.title}]({hit.link})" if hit.link else hit.title
        lines.append(f"{hit.rank}. **{title}**  ")
        details = [hit.id] + [str(hit.metadata[k]) for k in ("year",) if hit.metadata.get(k)]
        if hit.reason is not None:
            details.append(f"for *{hit.reason.tag}*, like \u201c{hit.reason.closest_title}\u201d")
        lines.append("   " + " · ".join(details))
        if hit.abstract:
            lines.append(f"   > {hit.abstract[:600]}{'...' if len(hit.abstract) > 600 else ''}")
        lines.append("")
    return "\n".join(lines) + "\n"


def digest_html(inbox: Inbox, index_name: str) -> str:
    """The inbox as one self-contained HTML page (no script, nothing fetched from
    elsewhere), for a mail."""
    escape = html.escape
    items = []
    for hit in inbox.hits:
        title = escape(hit.title or hit.id)
        if hit.link:
            title = f'<a href="{escape(hit.link, quote=True)}">{title}</a>'
        why = ""
        if hit.reason is not None:
            why = (f'<p class="why">for <b>{escape(hit.reason.tag)}</b>, like '
                   f'\u201c{escape(hit.reason.closest_title)}\u201d '
                   f'({hit.reason.similarity:.2f})</p>')
        abstract = escape(hit.abstract[:1200]) + ("..." if len(hit.abstract) > 1200 else "")
        items.append(f'<li><h2>{title}</h2><p class="meta">{escape(hit.id)}</p>{why}'
                     f'<p>{abstract}</p></li>')
    summary = (f"{inbox.new} new since {escape(inbox.since)}; {len(inbox.hits)} shown"
               + (", ranked for your tags." if inbox.ranked else "."))
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>New papers in {escape(index_name)}</title><style>"
            "body{font:15px/1.45 system-ui,sans-serif;max-width:46rem;margin:2rem auto;"
            "padding:0 1rem;color:#222}h1{font-size:1.4rem}h2{font-size:1.05rem;margin:0}"
            "li{margin:0 0 1.2rem}.meta{color:#666;margin:.2rem 0;font-size:.85rem}"
            ".why{color:#245;margin:.2rem 0}</style></head><body>"
            f"<h1>New papers in {escape(index_name)}</h1><p>{summary}</p>"
            f"<ol>{''.join(items)}</ol></body></html>\n")
