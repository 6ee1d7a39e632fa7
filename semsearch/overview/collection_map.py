"""The map of a collection: every paper a point on a plane (``layout``), regions labelled by
their most distinctive words and their most central paper, kept with the index.

The map is a derived part of a state (named in the commit record, its files checksummed),
fitted once by ``fit`` and carried by every later state: papers added since are placed when
the map is read, by the same fitted function, so nobody moves; papers removed leave it. Only
a refit (``semsearch map --rebuild``) moves points and may change regions and labels.
"""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch import _fs
from semsearch.errors import StoreError
from semsearch.index import lexical as bm25
from semsearch.index.segments import describe_derived
from semsearch.overview import layout as layouts

if TYPE_CHECKING:
    from semsearch.search.view import IndexView
    from semsearch.store import IndexFolder

KIND = "map"
#: papers the layout is fitted on at most (the rest are placed by it)
FIT_SAMPLE = 50_000
#: papers of a region its label is read from, and words in a label
LABEL_SAMPLE, LABEL_WORDS = 300, 3
#: the files of the map part
LAYOUT_FILES = layouts.ARRAYS
PLACED_FILES = ("rows", "places", "point_regions")
BATCH = 8192

Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class MapPoint:
    id: str
    x: float
    y: float
    region: int


@dataclass(frozen=True)
class Region:
    """A region of the map: its words (the most distinctive first), its most central paper,
    how many papers it holds, and where its label goes."""

    number: int
    words: tuple[str, ...]
    central_id: str
    central_title: str
    papers: int
    x: float
    y: float

    @property
    def label(self) -> str:
        return ", ".join(self.words)

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "label": self.label, "words": list(self.words),
                "central": {"id": self.central_id, "title": self.central_title},
                "papers": self.papers, "x": round(self.x, 4), "y": round(self.y, 4)}


@dataclass(frozen=True)
class CollectionMap:
    """Every live paper's place and region (``points``; as arrays, ``ids``, ``places``,
    ``point_regions``, in the order papers came), the regions, and how the map came about:
    when it was fitted, over how many papers, and how many were placed onto it since."""

    ids: list[str]
    places: np.ndarray = field(repr=False)         # (n, 2) float32
    point_regions: np.ndarray = field(repr=False)  # (n,) int32
    regions: list[Region] = field(default_factory=list)
    fitted: str = ""
    fitted_papers: int = 0
    placed_since: int = 0

    def positions_of(self, ids: list[str]) -> list[int]:
        """Where papers are in ``ids`` (those on the map)."""
        return [at for doc_id in ids if (at := self._position.get(doc_id)) is not None]

    @functools.cached_property
    def _position(self) -> dict[str, int]:
        return {doc_id: at for at, doc_id in enumerate(self.ids)}

    @functools.cached_property
    def points(self) -> list[MapPoint]:
        return [MapPoint(doc_id, x, y, region) for doc_id, (x, y), region in
                zip(self.ids, self.places.tolist(), self.point_regions.tolist())]

    def to_json(self) -> dict[str, Any]:
        return {"fitted": self.fitted, "fitted_papers": self.fitted_papers,
                "placed_since": self.placed_since,
                "regions": [region.to_json() for region in self.regions],
                "points": [{"id": p.id, "x": round(p.x, 5), "y": round(p.y, 5),
                            "region": p.region} for p in self.points]}


def fit(folder: IndexFolder, seed: int = 0, progress: Progress | None = None) -> None:
    """Fit a map of the newest state and commit it as the state's map part (replacing any
    other), under the writer lock: no write lands between what it reads and what it
    commits."""
    from semsearch.search.view import IndexView
    from semsearch.store.folder import now

    progress = progress or (lambda *_: None)
    with folder.writing() as writer:
        snapshot = writer.pin_base()
        try:
            view = IndexView(snapshot)
            fitted = layouts.fit(_sample(view, seed), seed, before=_layout(view))
            rows, places, regions = _placed(view, fitted, progress)
            name = writer.new_name(KIND)
            path = writer.segments_path / name
            path.mkdir(parents=True)
            for file_name, array in {**fitted.arrays(), "rows": rows, "places": places,
                                     "point_regions": regions}.items():
                np.save(path / f"{file_name}.npy", array)
            described = _described_regions(view, fitted, rows, places, regions, seed)
            data = {"spread": fitted.spread, "fitted": now(), "papers": int(len(rows)),
                    "regions": described, "method": "k-means landmarks, t-SNE, k-means regions",
                    "refit": bool(writer.base.derived_part(KIND))}
            part = describe_derived(writer.segments_path, name, KIND, int(len(rows)), data)
            writer.commit(writer.base.with_derived(part, KIND))
        finally:
            snapshot.close()


def read(view: IndexView) -> CollectionMap | None:
    """The map of this state (None if none was fitted): the papers it was fitted over where
    they still are, and papers added since placed onto it."""
    part = view.commit.derived_part(KIND)
    if part is None:
        return None
    arrays = _arrays(view, part, LAYOUT_FILES + PLACED_FILES)
    fitted = layouts.Layout.from_arrays(arrays, part.data["spread"])
    rows, ids = _live_rows_and_ids(view)
    at = np.searchsorted(arrays["rows"], rows)
    at = np.minimum(at, max(len(arrays["rows"]) - 1, 0))
    known = (arrays["rows"][at] == rows) if len(arrays["rows"]) else np.zeros(len(rows), bool)
    places = np.zeros((len(rows), 2), np.float32)
    regions = np.zeros(len(rows), np.int32)
    places[known], regions[known] = arrays["places"][at[known]], \
        arrays["point_regions"][at[known]]
    new = np.flatnonzero(~known)
    for start in range(0, len(new), BATCH):
        chunk = new[start:start + BATCH]
        places[chunk], regions[chunk] = fitted.place(view.vectors(rows[chunk]))
    counts = np.bincount(regions, minlength=len(part.data["regions"]))
    described = [Region(r["number"], tuple(r["words"]), r["central_id"], r["central_title"],
                        int(counts[r["number"]]), r["x"], r["y"])
                 for r in part.data["regions"]]
    return CollectionMap(ids, places, regions, described, part.data["fitted"],
                         int(part.count), int(len(new)))


def _arrays(view: IndexView, part, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    files = view.snapshot.part(part.name)
    found = {}
    for name in names:
        try:
            found[name] = _fs.load_array(files.path(f"{name}.npy"))
        except (OSError, ValueError) as error:
            raise StoreError(f"{files.shown(name + '.npy')}: cannot read the map ({error}); "
                             f"`semsearch map --rebuild` fits it again") from None
    return found


def _layout(view: IndexView) -> layouts.Layout | None:
    """The layout of the map this state has, if any (a refit starts from it)."""
    part = view.commit.derived_part(KIND)
    if part is None:
        return None
    return layouts.Layout.from_arrays(_arrays(view, part, LAYOUT_FILES), part.data["spread"])


def _sample(view: IndexView, seed: int) -> np.ndarray:
    """Vectors of up to FIT_SAMPLE live papers picked at random."""
    rng = np.random.default_rng(seed)
    share = min(1.0, FIT_SAMPLE / max(view.count, 1))
    picked = [vectors[rng.random(len(vectors)) < share] if share < 1 else vectors
              for _, vectors in view.live_vectors(BATCH)]
    return np.concatenate(picked) if picked else np.zeros((0, view.segments.dimension),
                                                          np.float32)


def _placed(view: IndexView, fitted: layouts.Layout,
            progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, places, regions = [], [], []
    done = 0
    for batch_rows, vectors in view.live_vectors(BATCH):
        found_places, found_regions = fitted.place(vectors)
        rows.append(batch_rows), places.append(found_places), regions.append(found_regions)
        done += len(batch_rows)
        progress("placing", done, view.count)
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 2), np.float32), np.zeros(0, np.int32)
    rows_all = np.concatenate(rows).astype(np.int64)
    order = np.argsort(rows_all, kind="stable")
    return rows_all[order], np.concatenate(places)[order], np.concatenate(regions)[order]


def _described_regions(view: IndexView, fitted: layouts.Layout, rows: np.ndarray,
                       places: np.ndarray, regions: np.ndarray, seed: int) -> list[dict]:
    """Each region's label words (the words most over-represented in a sample of its papers'
    texts, weighted by how common they are there: class-based TF-IDF's aim; words as BM25
    reads them, function words left out), its most central paper (nearest
    the mean of its papers' vectors) and the middle of its papers' places."""
    rng = np.random.default_rng(seed)
    tokenizer = view.tokenizer
    counted: dict[int, collections.Counter] = {}
    spelled: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    found = []
    for number in range(fitted.region_count):
        members = np.flatnonzero(regions == number)
        if not len(members):
            continue
        chosen = rows[rng.choice(members, min(LABEL_SAMPLE, len(members)), replace=False)]
        papers = view.documents.by_rows(chosen.tolist())
        terms: collections.Counter = collections.Counter()
        for paper in papers.values():
            for word, term in tokenizer.words_and_terms(paper.text):
                if word in bm25.STOPWORDS or len(word) < 3 or word.isdigit():
                    continue
                terms[term] += 1
                spelled[term][word] += 1
        counted[number] = terms
        vectors = view.vectors(chosen)
        centre = vectors.mean(axis=0)
        central = int(chosen[int(np.argmax(vectors @ centre))])
        middle = np.median(places[members], axis=0)
        found.append({"number": number, "central_id": papers[central].id,
                      "central_title": papers[central].title,
                      "x": float(middle[0]), "y": float(middle[1])})
    everywhere: collections.Counter = collections.Counter()
    for terms in counted.values():
        everywhere.update(terms)
    overall = max(sum(everywhere.values()), 1)
    for region in found:
        terms = counted[region["number"]]
        total = max(sum(terms.values()), 1)

        def distinctive(term: str) -> float:
            """What the term adds to how this region's words differ from all (its share of
            the region's words, times how many times more common it is here)."""
            share = terms[term] / total
            return share * math.log(share / (everywhere[term] / overall))

        scored = sorted(terms, key=lambda t: (-distinctive(t), t))
        region["words"] = [spelled[term].most_common(1)[0][0]
                           for term in scored[:LABEL_WORDS]]
    return found


def _live_rows_and_ids(view: IndexView) -> tuple[np.ndarray, list[str]]:
    pairs = view.documents.ids_from_row(0)
    return np.fromiter((row for row, _ in pairs), np.int64, len(pairs)), \
        [doc_id for _, doc_id in pairs]

