"""Metadata filters (year, category, author, tag): what a filter means, in one place.

The store keeps a facet table of (kind, key, row, shown) built from each document's metadata
by ``facets_of``; a ``Filter`` says which keys a document must have, and the store turns that
into the set of rows to search among. Keys are folded (case, accents, punctuation), so a
filter matches however the user or the source spelled a name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from semsearch.documents import normalise_text
from semsearch.errors import QueryError

_YEARS = re.compile(r"^\s*(\d{4})?\s*(?:(\.\.)\s*(\d{4})?)?\s*$")
_NAME_SUFFIXES = {"jr", "sr", "ii", "iii", "iv"}

#: facet kinds, with the command-line flag that filters on each
FLAGS = {"year": "--year", "category": "--category", "author": "--author", "tag": "--tag"}


@dataclass(frozen=True)
class FacetValue:
    """A value papers can be filtered by (as the source wrote it), and how many have it."""

    value: str
    count: int


@dataclass(frozen=True)
class Pattern:
    """One value a facet key may take: exactly ``key``, or with ``prefix`` also any key that
    starts with ``key`` and a dot (a category family such as "cs")."""

    key: str
    prefix: bool = False


@dataclass(frozen=True)
class Part:
    """One part of a filter: its kind, what the user typed, and the keys that satisfy it."""

    kind: str
    typed: str
    patterns: tuple[Pattern, ...]

    @property
    def flag(self) -> str:
        return f"{FLAGS[self.kind]} {self.typed!r}"


@dataclass(frozen=True)
class Filter:
    """Documents to search among. Each given part must match; within a part, any value may.

    ``years``: (first, last), inclusive, either end None for open. ``categories``: labels such
    as "cs.CL", in any case; one without a dot ("cs", or "cs.*") takes the whole family.
    ``authors``: a last name, or a full name in either order ("Ada Lovelace", "Lovelace, Ada"),
    with or without middle names and accents, initials for first names. ``tags``: labels the
    source gave (keywords, Zotero tags), in any case.
    """

    years: tuple[int | None, int | None] | None = None
    categories: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.years or self.categories or self.authors or self.tags)

    @classmethod
    def parse(cls, year: str | None = None, categories: tuple[str, ...] = (),
              authors: tuple[str, ...] = (), tags: tuple[str, ...] = ()) -> Filter:
        """From the command line's words: ``--year 2023``, ``--year 2021..2024``, ``2021..``."""
        parsed = cls(years=parse_years(year) if year else None,
                     categories=tuple(c.strip() for c in categories if c.strip()),
                     authors=tuple(a.strip() for a in authors if a.strip()),
                     tags=tuple(t.strip() for t in tags if t.strip()))
        parsed.parts()  # refuses a part with nothing to match, now rather than at the search
        return parsed

    def parts(self) -> list[list[Part]]:
        """The filter as parts to AND together, each a list of alternatives to OR."""
        groups: list[list[Part]] = []
        if self.categories:
            groups.append([Part("category", c, category_patterns(c)) for c in self.categories])
        if self.authors:
            groups.append([Part("author", a, tuple(Pattern(k) for k in query_keys(a)))
                           for a in self.authors])
        if self.tags:
            groups.append([Part("tag", t, (Pattern(fold(t)),)) for t in self.tags])
        for group in groups:
            for part in group:
                if not any(pattern.key for pattern in part.patterns):
                    raise QueryError(f"{part.flag} has no letters or digits to match")
        return groups


def parse_years(text: str) -> tuple[int | None, int | None]:
    match = _YEARS.match(text)
    if not match or not (match.group(1) or match.group(3)):
        raise QueryError(f"--year takes a year or a range such as 2021..2024, not {text!r}")
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(3)) if match.group(3) else None
    if first == 0 or last == 0:
        raise QueryError(f"--year {text!r}: 0000 is not a year (leave a side of the range "
                         f"empty for no bound: 2021.., ..2019)")
    if not match.group(2):
        last = first
    if first is not None and last is not None and first > last:
        raise QueryError(f"the year range {text!r} ends before it starts")
    return first, last


def fold(text: str) -> str:
    """Lower case, no accents, words joined by single spaces: "Liò" and "lio" are one key."""
    decomposed = unicodedata.normalize("NFKD", text)
    return normalise_text("".join(c for c in decomposed if not unicodedata.combining(c)))


def name_parts(name: str) -> tuple[str, str]:
    """(given names, last name), folded, from "First Middle Last" or "Last, First Middle"."""
    if "," in name:
        last, given = name.split(",", 1)
        last, given = fold(last), fold(given)
        if last and given and fold(given) in _NAME_SUFFIXES:  # "King, Jr." is not "Jr. King"
            return "", last
        return given, last.split()[-1] if last else ""
    words = fold(name).split()
    if len(words) > 2 and words[-1] in _NAME_SUFFIXES:
        words = words[:-1]
    if not words:
        return "", ""
    return " ".join(words[:-1]), words[-1]


def author_keys(name: str) -> set[str]:
    """The keys an author is stored under: last name, full name, first name and last, and
    first initial and last (so "A. Gomez" and "Aidan Gomez" find "Aidan N. Gomez")."""
    given, last = name_parts(name)
    if not last:
        return set()
    keys = {last}
    if given:
        first = given.split()[0]
        keys |= {f"{given} {last}", f"{first} {last}", f"{first[0]} {last}"}
    return keys


def query_keys(name: str) -> set[str]:
    """The keys a typed name matches: a last name alone matches every author of that name;
    a first name (or initial) and a last name match those two, whatever stands between."""
    given, last = name_parts(name)
    if not given:
        return {last} if last else set()
    first = given.split()[0]
    if len(first) == 1:
        return {f"{first} {last}"}
    return {f"{first} {last}", f"{given} {last}"}


def category_patterns(label: str) -> tuple[Pattern, ...]:
    """A label with a dot is one category ("cs.CL"); without one, or ending ".*", a family."""
    text = label.strip()
    if text.endswith(".*"):
        return (Pattern(fold_label(text[:-2]), prefix=True),)
    if "." not in text:
        return (Pattern(fold_label(text), prefix=True),)
    return (Pattern(fold_label(text)),)


def fold_label(label: str) -> str:
    """A category or tag compared in any case, its dots and hyphens kept ("physics.comp-ph")."""
    return " ".join(str(label).split()).casefold()


def facets_of(metadata: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, key, shown) triples a document can be filtered by (and its aliases, kind
    "alias", by which it is named); ``shown`` is the value as the source wrote it, for
    suggestions."""
    facets: list[tuple[str, str, str]] = []
    year = metadata.get("year")
    if isinstance(year, int):
        facets.append(("year", f"{year:04d}", str(year)))
    for category in metadata.get("categories") or ():
        if key := fold_label(str(category)):
            facets.append(("category", key, str(category)))
    for tag in metadata.get("tags") or ():
        if key := fold(str(tag)):
            facets.append(("tag", key, str(tag)))
    for alias in metadata.get("aliases") or ():
        if key := fold_label(str(alias)):
            facets.append(("alias", key, str(alias)))
    seen: set[str] = set()
    for author in metadata.get("authors") or ():
        for key in sorted(author_keys(str(author)) - seen):
            seen.add(key)
            facets.append(("author", key, str(author)))
    return facets
