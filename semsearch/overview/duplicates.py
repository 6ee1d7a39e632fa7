"""Near-duplicates: the same paper held twice under different ids (from two sources, an arXiv
version and its journal copy, two exports of one library), which the exact check of a build
(same title and abstract, whatever the id) lets through.

Two papers are one if their vectors are nearly the same and their titles alike, or if their
titles are the same and their vectors close (an abstract shortened or cut by an export), or
if their vectors are all but identical (a title reworded over the same abstract). The scan
asks the vector index for each paper's few nearest neighbours, a batch at a time, and the
document table for the papers that share a title; pairs join into groups.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch.documents import Document, normalise_text
from semsearch.errors import QueryError

if TYPE_CHECKING:
    from semsearch.search.view import IndexView

#: cosine from which two papers with alike titles are one paper (``--threshold``; chosen on
#: planted pairs, benchmarks/duplicates.py)
SAME_PAPER_COSINE = 0.9
#: how alike their titles must be then (difflib's ratio over normalised titles)
SAME_PAPER_TITLES = 0.8
#: cosine from which two papers with the same title are one (a shortened abstract)
SAME_TITLE_COSINE = 0.8
#: cosine from which two papers are one whatever their titles (the same abstract)
SAME_TEXT_COSINE = 0.985
#: what `index` and `add` drop: "exact", a paper whose title and abstract another paper has
#: (always); "near", near-duplicates too, folded into the paper that came first, which keeps
#: their ids (as aliases: the paper answers to them)
DEDUP_MODES, DEFAULT_DEDUP = ("exact", "near"), "exact"
#: nearest neighbours of each paper compared with it
NEIGHBOURS = 4
#: papers whose neighbours are asked for at once
BATCH = 4096

_NUMBERS = re.compile(r"\d+")

Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class DuplicateGroup:
    """Papers that are one paper: their ids (the first the one that came into the index
    first), their titles, and the lowest cosine of a pair that joined the group."""

    ids: tuple[str, ...]
    titles: tuple[str, ...]
    similarity: float

    def to_json(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "titles": list(self.titles),
                "similarity": round(self.similarity, 4)}


def titles_alike(first: str, second: str) -> bool:
    """Whether two normalised titles read as one title (reworded a little, a typo); papers
    without titles have nothing alike to go by, and titles with other numbers are other
    papers (part 1 and part 2 of a series, one study in two years)."""
    if not (first and second) or _NUMBERS.findall(first) != _NUMBERS.findall(second):
        return False
    return difflib.SequenceMatcher(None, first, second).ratio() >= SAME_PAPER_TITLES


def same_paper(cosine: float, first_title: str, second_title: str,
               threshold: float = SAME_PAPER_COSINE) -> bool:
    """The rule: two papers (their cosine, their normalised titles) are one paper."""
    if first_title and first_title == second_title:
        return cosine >= min(threshold, SAME_TITLE_COSINE)
    if cosine >= max(threshold, SAME_TEXT_COSINE):
        return True
    return cosine >= threshold and titles_alike(first_title, second_title)


def check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise QueryError(f"--threshold is a cosine above 0 and at most 1, not {threshold}")


def find(view: IndexView, threshold: float = SAME_PAPER_COSINE,
         progress: Progress | None = None) -> list[DuplicateGroup]:
    """Every group of near-duplicates among the live papers of ``view``, the largest
    similarity first."""
    check_threshold(threshold)
    candidates = set(_shared_titles(view))
    total, done = view.count, 0
    for rows, vectors in view.live_vectors(BATCH):
        candidates |= _close_pairs(view, rows, vectors, threshold)
        done += len(rows)
        if progress:
            progress("duplicates", done, total)
    return _groups(view, candidates, threshold)


def among(view: IndexView, rows: Iterable[int],
          threshold: float = SAME_PAPER_COSINE) -> list[DuplicateGroup]:
    """The groups of near-duplicates that hold one of ``rows`` (papers just added): their
    neighbours and the papers of their titles, not a scan of everything."""
    check_threshold(threshold)
    rows = np.array(sorted(set(rows)), dtype=np.int64)
    candidates: set[tuple[int, int]] = set()
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        candidates |= _close_pairs(view, chunk, view.vectors(chunk), threshold)
    for row, paper in view.documents.fields_by_rows(rows.tolist()).items():
        for other in view.documents.rows_of_title(paper[1]) if normalise_text(paper[1]) else ():
            if other != row:
                candidates.add((min(row, other), max(row, other)))
    return _groups(view, candidates, threshold)


def _close_pairs(view: IndexView, rows: np.ndarray, vectors: np.ndarray,
                 threshold: float) -> set[tuple[int, int]]:
    """(lower row, higher row) of each paper and those of its nearest neighbours close
    enough that the rule could make them one paper."""
    lowest = min(threshold, SAME_TITLE_COSINE)
    pairs = set()
    for row, (scores, found) in zip(rows.tolist(), view.dense(vectors, NEIGHBOURS + 1)):
        for score, other in zip(scores.tolist(), found.tolist()):
            if other != row and score >= lowest:
                pairs.add((min(row, other), max(row, other)))
    return pairs


def folded(groups: list[DuplicateGroup],
           papers: dict[str, Document]) -> tuple[list[Document], list[str]]:
    """(each group's first paper, with the others' ids and aliases added to its aliases; the
    ids of the others): what folding the groups writes."""
    kept, gone = [], []
    for group in groups:
        first = papers[group.ids[0]]
        aliases = list(first.metadata.get("aliases") or [])
        for other in group.ids[1:]:
            aliases += [other, *(papers[other].metadata.get("aliases") or [])]
            gone.append(other)
        kept.append(replace(first, metadata={**first.metadata,
                                             "aliases": list(dict.fromkeys(aliases))}))
    return kept, gone


def _shared_titles(view: IndexView) -> Iterable[tuple[int, int]]:
    """Pairs of papers with the same normalised title (each to the first of its title)."""
    for rows in view.documents.rows_sharing_titles():
        for other in rows[1:]:
            yield rows[0], other


def _groups(view: IndexView, candidates: set[tuple[int, int]],
            threshold: float) -> list[DuplicateGroup]:
    pairs = sorted(candidates)
    if not pairs:
        return []
    rows = sorted({row for pair in pairs for row in pair})
    papers = view.documents.fields_by_rows(rows)
    vectors = dict(zip(rows, view.vectors(rows)))
    titles = {row: normalise_text(papers[row][1]) for row in rows}
    parent = {row: row for row in rows}

    def root(row: int) -> int:
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    lowest: dict[int, float] = {}
    for first, second in pairs:
        cosine = float(vectors[first] @ vectors[second])
        if not same_paper(cosine, titles[first], titles[second], threshold):
            continue
        a, b = root(first), root(second)
        if a == b:
            continue
        parent[max(a, b)] = min(a, b)  # the earlier paper heads the group
        lowest[min(a, b)] = min(lowest.get(a, 1.0), lowest.get(b, 1.0), cosine)
    members: dict[int, list[int]] = {}
    for row in rows:
        members.setdefault(root(row), []).append(row)
    groups = [DuplicateGroup(tuple(papers[row][0] for row in group),
                             tuple(papers[row][1] for row in group), lowest[head])
              for head, group in members.items() if len(group) > 1]
    return sorted(groups, key=lambda group: (-group.similarity, group.ids))
