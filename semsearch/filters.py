"""Metadata filters (year, category, author): what a filter means, in one place.

The store keeps a facet table of (kind, value, row) built from each document's metadata by
``facets_of``; a ``Filter`` becomes the set of rows whose facets match, and the vector and BM25
indexes search only those rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from semsearch.documents import normalise_text
from semsearch.errors import QueryError

_YEARS = re.compile(r"^\s*(\d{4})?\s*(?:(\.\.)\s*(\d{4})?)?\s*$")


@dataclass(frozen=True)
class Filter:
    """Documents to search among. Each given part must match; within a part, any value may.

    ``years``: (first, last), inclusive, either end None for open. ``categories``: exact
    labels such as "cs.CL". ``authors``: full names or last names, ignoring case and accents.
    """

    years: tuple[int | None, int | None] | None = None
    categories: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.years or self.categories or self.authors)

    @classmethod
    def parse(cls, year: str | None = None, categories: tuple[str, ...] = (),
              authors: tuple[str, ...] = ()) -> Filter:
        """From the command line's words: ``--year 2023``, ``--year 2021..2024``, ``2021..``."""
        return cls(years=parse_years(year) if year else None,
                   categories=tuple(c.strip() for c in categories if c.strip()),
                   authors=tuple(a.strip() for a in authors if a.strip()))

    def conditions(self) -> Iterator[tuple[str, str, list[str]]]:
        """(kind, SQL comparison, values) per part: the store ANDs the parts together."""
        if self.years:
            first, last = self.years
            yield "year", "value BETWEEN ? AND ?", [f"{first or 0:04d}", f"{last or 9999:04d}"]
        if self.categories:
            yield "category", _any_of(self.categories), list(self.categories)
        if self.authors:
            names = [normalise_text(name) for name in self.authors]
            yield "author", _any_of(names), names


def parse_years(text: str) -> tuple[int | None, int | None]:
    match = _YEARS.match(text)
    if not match or not (match.group(1) or match.group(3)):
        raise QueryError(f"--year takes a year or a range such as 2021..2024, not {text!r}")
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(3)) if match.group(3) else None
    if not match.group(2):
        last = first
    if first and last and first > last:
        raise QueryError(f"the year range {text!r} ends before it starts")
    return first, last


def facets_of(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) pairs a document can be filtered by; authors by full and by last name."""
    facets: list[tuple[str, str]] = []
    year = metadata.get("year")
    if isinstance(year, int):
        facets.append(("year", f"{year:04d}"))
    for category in metadata.get("categories") or ():
        facets.append(("category", str(category)))
    names = set()
    for author in metadata.get("authors") or ():
        full = normalise_text(str(author))
        if full:
            names.add(full)
            names.add(full.rsplit(" ", 1)[-1])
    facets.extend(("author", name) for name in sorted(names))
    return facets


def _any_of(values) -> str:
    return "value IN (" + ",".join("?" * len(values)) + ")"
