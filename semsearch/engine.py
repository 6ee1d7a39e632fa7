"""The engine: semsearch's public face. A small set of narrow calls (build, add, remove,
search, like, show, info, verify) over the parts that do the work: ``indexing`` writes,
``store`` keeps the index on disk, ``search`` answers over one open state.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semsearch import indexing
from semsearch.documents import MAX_QUERY_CHARS, Document, Hit
from semsearch.embedding import Embedder, OnnxEmbedder, model_dimension, model_name_for
from semsearch.errors import (InputError, InterruptedAfterCommit, QueryError, SemsearchError,
                              StoreError, UnknownPaper)
from semsearch.filters import FLAGS, FacetValue, Filter
from semsearch.index import lexical as bm25
from semsearch.index import vector
from semsearch.indexing import BuildReport, Progress, UpdateReport
from semsearch.overview import collection_map
from semsearch.overview import duplicates as duplicate_papers
from semsearch.overview.collection_map import CollectionMap
from semsearch.overview.duplicates import DuplicateGroup
from semsearch.search import explain as explanations
from semsearch.search import feedback, ranking
from semsearch.search.fusion import HYBRID_SCALE, FusionSettings
from semsearch.search.view import IndexView
from semsearch.store import IndexFolder, Manifest, Snapshot, resolve
from semsearch.store.documents import PaperFields
from semsearch.store.records import FORMAT_VERSION

if TYPE_CHECKING:
    from semsearch.ray_embedding import RaySettings
    from semsearch.reading import Inbox, Reader, TagChange, TagInfo

__all__ = ["BuildReport", "Engine", "HYBRID_SCALE", "IndexInfo", "MAX_QUERY_CHARS",
           "UpdateReport"]

MAX_K = 10_000
#: ids read at a time by ``Engine.ids``
IDS_PAGE = 10_000
#: from this many papers the query model runs on one thread, leaving a core to hybrid's BM25
#: thread (and a server's other requests); below it, the embedding is most of a query and
#: takes every core (A/B in benchmarks/README.md)
ONE_QUERY_THREAD_FROM = 500_000
#: up to this many papers, an unknown title is compared with every title for suggestions
SUGGEST_FROM_ALL_UP_TO = 20_000
#: search modes and `like` methods, declared where they are implemented
MODES, DEFAULT_MODE = ranking.MODES, ranking.DEFAULT_MODE
LIKE_METHODS, DEFAULT_LIKE_METHOD = feedback.METHODS, feedback.DEFAULT_METHOD
INDEX_TYPES = ("auto",) + vector.KINDS
#: what `facets` lists by default: authors are many, and are looked up by name instead
FACET_KINDS = ("year", "category", "tag")
DEFAULT_TARGET_RECALL = vector.DEFAULT_TARGET_RECALL
#: the cosine from which two papers with alike titles are one (``duplicates``), and what
#: `index` and `add` drop as duplicates (``dedup``)
DUPLICATE_THRESHOLD = duplicate_papers.SAME_PAPER_COSINE
DEDUP_MODES, DEFAULT_DEDUP = duplicate_papers.DEDUP_MODES, duplicate_papers.DEFAULT_DEDUP
LexicalSettings = bm25.LexicalSettings


@dataclass(frozen=True)
class IndexInfo:
    path: str
    model: str
    dimension: int
    metric: str
    count: int
    index_type: str
    #: search parameters of the vector index, and the recall@10 they reach on probes held out
    #: from the tuning (``recall_probes`` of them, of the kind ``recall_probe_kind``:
    #: "titles", fragments of sampled titles embedded as queries; "given", the query vectors
    #: passed to the build; "documents", document vectors moved away from themselves)
    index_params: dict
    tuned_recall_at_10: float | None
    #: documents added and removed since the vector index was trained (see `reindex`)
    changed_since_build: dict
    #: when the index was built (`index`, `upgrade`), and when it last changed (any write)
    created: str
    format_version: int
    bytes_on_disk: int
    #: whether the documents were embedded by the int8 model (`index --quantized`)
    quantized: bool = False
    recall_probes: int = 0
    recall_probe_kind: str = ""
    #: segments searched, and how many of them the trained vector index holds
    segments: int = 1
    segments_in_vector_index: int = 0
    #: BM25 settings
    lexical: dict = dataclasses.field(default_factory=dict)
    #: the state's number: every write that changes the index makes a new one (a new build
    #: starts again at 1, in a new generation)
    version: int = 0
    generation: str = ""
    updated: str = ""
    #: when the map of the collection was fitted (`semsearch map`), if it was
    map_fitted: str | None = None


def _one_at_a_time(method):
    """The engine's calls run one at a time (see ``Engine``)."""
    @functools.wraps(method)
    def serialised(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return serialised


class Engine:
    """One index, opened lazily: nothing is read until a query or a write needs it.

    ``location`` is an index name (a folder under ``indexes/`` or $SEMSEARCH_INDEX_ROOT) or a
    path. ``model`` is a local sentence-transformers folder; by default the bundled
    all-MiniLM-L6-v2 for a new index, and the index's own model for an existing one.
    Queries are embedded by onnxruntime (no torch). ``bf16_queries=True`` embeds them in bf16 on
    OpenVINO instead, where it is installed (``pip install semsearch[bf16]``) and the CPU
    computes bf16 natively: faster for a process that runs many queries, after compiling at
    each query length's first use (see ``semsearch.bf16_queries`` and benchmarks/README.md).
    Papers are embedded by the same ONNX model in fp32, or by an int8 copy when
    ``quantized=True`` (about twice as fast, slightly less exact); ``add`` embeds as the index
    was built unless ``quantized`` says otherwise.
    ``embedder`` replaces the model for both (for tests, or your own embedding function).
    ``fusion`` says how hybrid search combines the dense and BM25 rankings.
    ``ray`` (a ``RaySettings``) embeds the papers of builds and adds on a Ray cluster
    (``pip install semsearch[ray]``; see ``semsearch.ray_embedding``).

    An engine reads the state the index was in when it first needed it, however many writes
    come after; ``refresh`` moves it to the newest.

    An engine may be shared by threads (a web application's): its calls run one at a time,
    so ``refresh`` or a write from one thread never pulls the state from under a search in
    another.
    """

    def __init__(self, location: str | Path | None = None, *, model: str | None = None,
                 embedder: Embedder | None = None, quantized: bool | None = None,
                 bf16_queries: bool = False, fusion: FusionSettings = FusionSettings(),
                 ray: RaySettings | None = None):
        self.folder = IndexFolder(resolve(location))
        self.fusion = fusion
        self._model = model
        self._embedder = embedder
        self._quantized = quantized
        self._bf16_queries = bf16_queries
        self._query_embedder: Embedder | None = embedder
        self._document_embedders: dict[bool, Embedder] = {}
        self._ray = ray
        self._view: IndexView | None = None
        self._lock = threading.RLock()
        self._reader: Reader | None = None

    @classmethod
    def open(cls, location: str | Path | None = None, **options) -> Engine:
        """An existing index; fails now, not at the first query, if there is none."""
        engine = cls(location, **options)
        engine._check_model(engine._open().manifest)
        return engine

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def exists(self) -> bool:
        """Whether the location holds an index (even a damaged one)."""
        return self.folder.is_index()

    @_one_at_a_time
    def close(self) -> None:
        """Let go of the state this engine reads; the next call opens the newest."""
        if self._view is not None:
            self._view.close()
        self._view = None

    def twin(self) -> Engine:
        """Another engine over the same index, with this one's model and settings, for a
        thread of its own: an engine's calls run one at a time, two engines side by side
        (a server's workers). They share nothing but the operating system's page cache."""
        return Engine(self.folder.path, model=self._model, embedder=self._embedder,
                      quantized=self._quantized, bf16_queries=self._bf16_queries,
                      fusion=self.fusion, ray=self._ray)

    @property
    @_one_at_a_time
    def state(self) -> tuple[str, int]:
        """(generation, commit number) of the state this engine answers from: what to key a
        cache of its answers by."""
        snapshot = self._open().snapshot
        return snapshot.name, snapshot.commit.number

    @_one_at_a_time
    def refresh(self) -> bool:
        """Move to the index's newest state if a write has changed it since this engine opened
        its own; whether it moved. Until then, every query answers from that state."""
        if self._view is None:
            return False
        if self._view.snapshot.is_latest(self.folder):
            return False
        self.close()
        return True

    # -- the reader's side: tags, recommendations, the inbox (``semsearch.reading``) --------

    @property
    def reader(self) -> Reader:
        """The reader's tags, seen papers and saved searches, kept beside the index (they
        outlive every rebuild), and the recommendations and inbox they ask for."""
        if self._reader is None:
            from semsearch.reading import Reader

            self._reader = Reader(self)
        return self._reader

    def tags(self) -> list[TagInfo]:
        """Every tag with its counts (see ``reader``)."""
        return self.reader.tags()

    def tag(self, papers: Iterable[str], tag: str, against: bool = False) -> TagChange:
        """Mark papers in a tag, for it or ``against`` it (see ``reader``)."""
        return self.reader.tag(papers, tag, against)

    def recommend(self, tags: Sequence[str] | None = None, k: int = 10,
                  since: str | None = None) -> list[Hit]:
        """Papers ranked for the reader's tags, each with its reason (see ``reader``)."""
        return self.reader.recommend(tags, k, since)

    def inbox(self, since: str | None = None, papers: Iterable[Document] | None = None,
              k: int = 20, peek: bool = False) -> Inbox:
        """The new papers, ranked for the tags, each shown once (see ``reader``)."""
        return self.reader.inbox(since, papers, k, peek)

    # -- writing ----------------------------------------------------------------------------

    def build(self, documents: Iterable[Document], vectors: np.ndarray | None = None,
              progress: Progress | None = None, index_type: str = "auto",
              target_recall: float = DEFAULT_TARGET_RECALL,
              lexical: LexicalSettings = LexicalSettings(), force: bool = False,
              query_vectors: np.ndarray | None = None,
              dedup: str = DEFAULT_DEDUP) -> BuildReport:
        """Replace the index's contents with ``documents``, deduplicated (``dedup="near"``:
        near-duplicates folded too, each group into its first paper, which keeps the others'
        ids as aliases).

        ``vectors`` (one row per document, in order) skips the model: for users who bring
        their own embeddings. ``index_type`` is "auto" (exact up to 20,000 papers, IVF above)
        or one of exact, hnsw, ivf; trained types are tuned to ``target_recall`` on probes
        like real queries: ``query_vectors`` (queries of your own, with your own vectors; kept,
        so that `rebuild` tunes on them again), else short fragments of sampled titles
        embedded by the model.
        The old contents stay live until the new ones are complete. ``force`` builds in a
        folder that holds other things (they are left alone).
        """
        _check_dedup(dedup)
        if vectors is not None:
            expected = model_dimension(self._model)
            given = np.shape(vectors)[-1] if np.ndim(vectors) == 2 else None
            if expected is not None and given != expected:
                raise InputError("vectors", None, f"vectors of dimension {given}, but the model "
                                                  f"{model_name_for(self._model)} makes "
                                                  f"{expected}: give model= the model that made "
                                                  f"them")
            embedding = indexing.Embedding(model=model_name_for(self._model), given=vectors)
        else:
            quantized = bool(self._quantized)
            embedder = self._document_embedder(quantized)
            embedding = indexing.Embedding(model=embedder.model_name,
                                           embed=embedder.embed_documents, quantized=quantized,
                                           batch=_batch_of(embedder))
        with self._writing():
            try:
                report = indexing.build(self.folder, documents, embedding,
                                        index_type=index_type, target_recall=target_recall,
                                        lexical=lexical, force=force,
                                        query_vectors=query_vectors,
                                        probe_embedder=self._probe_embedder, progress=progress)
                if dedup == "near":
                    groups = duplicate_papers.find(self._checked(), progress=progress)
                    report = dataclasses.replace(report, folded=self._fold(groups))
            finally:
                self._let_go_of_clusters()
            if vectors is None and isinstance(self.query_embedder, OnnxEmbedder):
                self.query_embedder.prepare()  # export (and convert) now: no query waits
        return report

    def add(self, documents: Iterable[Document], progress: Progress | None = None,
            dedup: str = DEFAULT_DEDUP) -> UpdateReport:
        """Add documents to the index, or update them by id, without rebuilding it: the new
        papers go into a segment of their own (a change costs what it changes).

        A document whose title and abstract are unchanged is not embedded again (its metadata
        is refreshed); a changed one is re-embedded. The trained vector index takes new
        vectors as they are once there are enough of them (``index.segments.plan``);
        `rebuild` re-trains it. With ``dedup="near"``, a new paper that is a near-duplicate
        of another (see ``duplicates``) is folded into the one that came first, which keeps
        its id as an alias.
        """
        _check_dedup(dedup)
        with self._writing():
            first_new = self._open().commit.next_row
            self.close()
            try:
                report = indexing.update(self.folder, documents, [], self._embedding_for,
                                         progress, documents_given=True)
                if dedup == "near" and report.changed:
                    view = self._checked()
                    new_rows = view.documents.live_rows()
                    report = dataclasses.replace(report, folded=self._fold(
                        duplicate_papers.among(view, new_rows[new_rows >= first_new])))
                return report
            finally:
                self._let_go_of_clusters()

    def _fold(self, groups: list[DuplicateGroup]) -> int:
        """Fold each group into its first paper (one write): how many papers were folded."""
        if not groups:
            return 0
        documents = self._open().documents
        rows = [documents.row_of_id(doc_id) for group in groups for doc_id in group.ids]
        papers = {paper.id: paper for paper in documents.by_rows(rows).values()}
        kept, gone = duplicate_papers.folded(groups, papers)
        self.close()
        indexing.update(self.folder, kept, gone, self._embedding_for)
        return len(gone)

    def remove(self, ids: Iterable[str]) -> UpdateReport:
        """Remove documents by id. Every id must be in the index, or nothing is removed."""
        ids = list(ids)
        if not ids:
            raise QueryError("give the id of at least one paper to remove")
        with self._writing():
            return indexing.update(self.folder, (), ids, self._embedding_for)

    def rebuild(self, index_type: str | None = None, lexical: LexicalSettings | None = None,
                target_recall: float = DEFAULT_TARGET_RECALL,
                progress: Progress | None = None) -> BuildReport:
        """Re-train the vector index over everything live (another type or recall target if
        given), merge every segment into one and drop deleted papers; with ``lexical``, index
        the texts for BM25 anew; fit the map again if there is one (from the map before, so
        that it moves little). Nothing is re-embedded. It holds the writer lock while it
        works: a concurrent write is refused until it is done, never lost."""
        with self._writing():
            mapped = self._open().commit.derived_part(collection_map.KIND) is not None
            self.close()
            report = indexing.reindex(self.folder, index_type, target_recall, lexical,
                                      self._probe_embedder, progress)
            if mapped:
                collection_map.fit(self.folder, progress=progress)  # from the map before
            return report

    def upgrade(self, progress: Progress | None = None) -> BuildReport:
        """Convert an index written by an older semsearch (format 1) to this one's, from its
        stored vectors and texts: nothing is embedded again."""
        from semsearch.upgrade import upgrade

        with self._writing():
            return upgrade(self.folder, self._probe_embedder, progress)

    def needs_upgrade(self) -> bool:
        """Whether the index was written by an older semsearch (see ``upgrade``)."""
        return self.folder.format_version() < FORMAT_VERSION

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A write: alone (no call of another thread runs meanwhile), from the newest state;
        an interruption that lands once it has committed says so, rather than reading as if
        nothing was saved."""
        with self._lock:
            self.close()
            before = self.folder.committed_state()
            try:
                yield
            except KeyboardInterrupt:
                if self.folder.committed_state() != before:
                    raise InterruptedAfterCommit(
                        f"interrupted, but the write was saved: {self.folder.path} holds it "
                        f"(what was left, a merge or tidying up, is done by the next "
                        f"write)") from None
                raise

    @staticmethod
    def dry_run(documents: Iterable[Document], progress: Progress | None = None) -> BuildReport:
        """Read, validate and deduplicate as a build would, writing no index and embedding
        nothing: to check a large input, and how fast it parses."""
        return indexing.dry_run(documents, progress)

    # -- querying ---------------------------------------------------------------------------

    def search(self, text: str, k: int = 10, mode: str = DEFAULT_MODE,
               where: Filter | None = None, explain: bool = False) -> list[Hit]:
        """The k documents that best answer ``text``: by meaning (dense), by words (lexical,
        BM25), or both fused (hybrid). ``text`` may be a whole abstract: like a document, only
        its first 256 tokens reach the model, and all of its words reach BM25.

        ``where`` keeps only papers that pass a filter (the true top k among them);
        ``explain`` adds to each hit its sentence closest to the query and the words matched.
        """
        [hits] = self.search_many([text], k, mode, where, explain)
        return hits

    @_one_at_a_time
    def search_many(self, texts: Sequence[str], k: int = 10, mode: str = DEFAULT_MODE,
                    where: Filter | None = None, explain: bool = False) -> list[list[Hit]]:
        """``search`` for many queries in one call, each answered as ``search`` would: the
        queries are embedded in batches and the vector index searches them together, on every
        core. For evaluations and scripts with many queries."""
        texts = [_query_text(text) for text in texts]
        _check_k(k)
        ranking.check_mode(mode)
        view = self._checked()
        allowed = self._allowed(where)
        ahead = ranking.search_ahead(view, texts, k, mode, self.fusion)
        vectors = self._query_vectors(texts) if texts and (mode != "lexical" or explain) \
            else None
        answers = ranking.rank(view, texts, vectors, k, mode, allowed, self.fusion, ahead)
        hits = self._hits(answers, vectors if mode != "lexical" else None)
        if explain:
            hits = [explanations.explained(view, self.query_embedder, text, query, found,
                                             [row for row, _ in answer])
                    for text, query, found, answer in zip(texts, vectors, hits, answers)]
        return hits

    def search_vector(self, vector: np.ndarray, k: int = 10,
                      exclude: frozenset[int] = frozenset(),
                      where: Filter | None = None) -> list[Hit]:
        """The k documents closest to a vector of your own (normalised to unit length)."""
        [hits] = self.search_vectors(np.asarray(vector, dtype=np.float32).reshape(1, -1), k,
                                     exclude, where)
        return hits

    @_one_at_a_time
    def search_vectors(self, vectors: np.ndarray, k: int = 10,
                       exclude: frozenset[int] = frozenset(),
                       where: Filter | None = None) -> list[list[Hit]]:
        """``search_vector`` for each row of ``vectors``, searched together on every core."""
        _check_k(k)
        vectors = vector.normalised(np.asarray(vectors).reshape(len(vectors), -1))
        self._check_dimension(vectors)
        view = self._checked()
        rankings = view.dense(vectors, k, self._allowed(where), exclude)
        return self._hits([ranking.pairs(found) for found in rankings], vectors)

    @_one_at_a_time
    def more_like_this(self, id_or_title: str, k: int = 10,
                       where: Filter | None = None) -> list[Hit]:
        """Papers closest in meaning to one already in the index (its stored vector, so as
        fast as a search); never itself. ``more_like_these`` takes several, and negatives."""
        row = self._row_of(id_or_title)
        return self.search_vector(self._checked().vector(row), k, exclude=frozenset({row}),
                                  where=where)

    @_one_at_a_time
    def more_like_these(self, positives: Iterable[str], negatives: Iterable[str] = (),
                        k: int = 10, method: str = DEFAULT_LIKE_METHOD,
                        mode: str = DEFAULT_MODE, where: Filter | None = None,
                        explain: bool = False) -> list[Hit]:
        """Papers like all of ``positives`` and unlike ``negatives`` (ids, titles or short
        names); none of them is returned. See ``semsearch.search.feedback`` for the methods.

        Hits are ordered by ``score`` (see ``Hit``); each one's ``cosine`` is to the liked
        papers' mean vector. ``explain`` adds its sentence closest to that mean and the liked
        papers' title words it contains.
        """
        liked = [self._row_of(p) for p in positives]
        disliked = [self._row_of(n) for n in negatives]
        if not liked:
            raise QueryError("give at least one paper to find papers like")
        view = self._checked()
        if both := set(liked) & set(disliked):
            shown = view.documents.by_rows(both)
            raise QueryError("a paper cannot be both liked and not liked: " + "; ".join(
                repr(shown[row].title or shown[row].id) for row in sorted(both)))
        feedback.check_method(method)
        ranking.check_mode(mode)
        _check_k(k)
        allowed = self._allowed(where)
        answer = feedback.rank_like(view, liked, disliked, k, method, mode, allowed, self.fusion)
        centre = feedback.liked_centre(view, liked)
        [hits] = self._hits([answer], None if mode == "lexical" else centre[None])
        if not explain:
            return hits
        found = view.documents.by_rows(liked)
        titles = " ".join(found[row].title or found[row].text for row in liked)
        return explanations.explained(view, self.query_embedder, titles, centre, hits,
                                        [row for row, _ in answer])

    @_one_at_a_time
    def facets(self, kinds: Sequence[str] = FACET_KINDS, limit: int = 100
               ) -> dict[str, list[FacetValue]]:
        """What the papers can be filtered by: for each kind ("year", "category", "author",
        "tag"), its values with how many papers have each; years in order, the rest the most
        common first, ``limit`` of each."""
        for kind in kinds:
            if kind not in FLAGS:
                raise QueryError(f"no facet {kind!r}: the facets are " + ", ".join(FLAGS))
        documents = self._open().documents
        return {kind: [FacetValue(value, count) for value, count in
                       documents.facet_counts(kind, limit)] for kind in kinds}

    @_one_at_a_time
    def get(self, id_or_title: str) -> Document:
        """A stored document by id, title (any case) or short name."""
        row = self._row_of(id_or_title)
        return self._open().documents.by_rows([row])[row]

    def ids(self) -> Iterator[str]:
        """The ids of every paper in the index, in the order they were added (read a page at
        a time, so other calls of other threads run in between)."""
        after = -1
        while True:
            with self._lock:
                page = self._open().documents.ids_after(after, IDS_PAGE)
            yield from (doc_id for _, doc_id in page)
            if len(page) < IDS_PAGE:
                return
            after = page[-1][0]

    @_one_at_a_time
    def papers(self, ids: Iterable[str]) -> dict[str, Document]:
        """The stored papers of these ids (those in the index), by id, fetched in one go."""
        documents = self._open().documents
        rows = {row: doc_id for doc_id in dict.fromkeys(ids)
                if (row := documents.row_of_id(doc_id)) is not None}
        return {doc.id: doc for doc in documents.by_rows(rows).values()}

    @_one_at_a_time
    def arrivals(self, after: str | None = None) -> tuple[list[tuple[str, str]], str]:
        """(id, when it came into the index) of every paper added since the bookmark
        ``after`` (every paper, if there is none or it is of another build), and the
        bookmark of the state read now: for what is new since some moment."""
        view = self._open()
        generation, commit = view.snapshot.name, view.commit
        start = 0
        if after and after.rsplit(":", 1)[0] == generation:
            start = int(after.rsplit(":", 1)[1])
        times = view.documents.commit_times(start)
        limits = np.array([next_row for next_row, _ in times], dtype=np.int64)
        found = []
        for row, doc_id in view.documents.ids_from_row(start):
            at = int(np.searchsorted(limits, row, side="right"))
            found.append((doc_id, times[min(at, len(times) - 1)][1]))
        return found, f"{generation}:{commit.next_row}"

    @_one_at_a_time
    def sample(self, count: int, seed: int = 0) -> list[str]:
        """Ids of up to ``count`` papers picked at random (the same for the same seed and
        state): a stand-in for "the rest of the collection"."""
        documents = self._open().documents
        rows = documents.random_rows(count, np.random.default_rng(seed))
        return [doc.id for doc in documents.by_rows(rows).values()]

    @_one_at_a_time
    def papers_by_facet(self, kind: str) -> dict[str, list[str]]:
        """For each value of a facet ("tag", "category", ...), the ids of its papers."""
        if kind not in FLAGS:
            raise QueryError(f"no facet {kind!r}: the facets are " + ", ".join(FLAGS))
        return self._open().documents.ids_by_facet(kind)

    @_one_at_a_time
    def has(self, doc_id: str) -> bool:
        """Whether a paper with this id is in the index."""
        return self._open().documents.row_of_id(doc_id) is not None

    @_one_at_a_time
    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of papers, by id, as a matrix in the order given."""
        view = self._checked()
        rows = []
        for doc_id in ids:
            row = view.documents.row_of_id(doc_id)
            if row is None:
                raise UnknownPaper(f"no paper with id {doc_id!r} in {self.folder.path}")
            rows.append(row)
        return view.vectors(rows)

    @_one_at_a_time
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Texts embedded as queries by the index's model, as searches embed them."""
        return self._query_vectors(list(texts))

    @property
    def query_runtime(self) -> str:
        """What embeds queries: "onnxruntime-fp32", "openvino-bf16" (up to 64 word pieces),
        or the name of an embedder of your own."""
        embedder = self.query_embedder
        return getattr(embedder, "query_runtime", type(embedder).__name__)

    @_one_at_a_time
    def warm_up(self) -> None:
        """Open the index (all of it) and start the query model now: for a long-running
        process, whose first requests should wait for neither. (A batch of two starts the
        model's runtime; a single query would be answered without it, as a one-shot
        command's is.)"""
        ann = self._open().ann
        if ann is not None:
            ann.read_whole()
        self._query_vectors(["warm up", "the query model"])

    @_one_at_a_time
    def verify(self) -> list[str]:
        """Problems found re-reading the index whole; an empty list means intact."""
        return self.folder.verify()

    @_one_at_a_time
    def recover(self) -> str:
        """Make the newest intact generation live, after damage or an interrupted build left
        the live one unreadable; its name. Nothing newer than what was live is used."""
        self.close()
        return self.folder.recover()

    @_one_at_a_time
    def info(self) -> IndexInfo:
        view = self._open()
        manifest, commit = view.manifest, view.commit
        tuning = commit.ann.tuning if commit.ann else {}
        mapped = commit.derived_part(collection_map.KIND)
        files = commit.files()
        documents = view.snapshot.path / "documents.sqlite"
        size = sum(f.get("bytes", 0) for f in files.values()) + \
            (documents.stat().st_size if documents.exists() else 0)
        return IndexInfo(path=str(self.folder.path), model=manifest.model,
                         dimension=manifest.dimension, metric=manifest.metric,
                         count=commit.count, index_type=commit.index_type,
                         index_params=tuning.get("params", {}),
                         tuned_recall_at_10=tuning.get("recall_at_10"),
                         changed_since_build=dict(commit.changed_since_build),
                         created=manifest.created or commit.created,
                         updated=commit.created or manifest.created,
                         format_version=manifest.format_version, bytes_on_disk=size,
                         quantized=manifest.quantized,
                         recall_probes=tuning.get("sample_queries", 0),
                         recall_probe_kind=tuning.get("probes", ""),
                         segments=len(commit.segments),
                         segments_in_vector_index=len(commit.ann.covers) if commit.ann else 0,
                         lexical=dict(commit.lexical), version=commit.number,
                         generation=view.snapshot.name,
                         map_fitted=mapped.data.get("fitted") if mapped else None)

    # -- the collection as a whole (``semsearch.overview``) ---------------------------------

    @_one_at_a_time
    def duplicates(self, threshold: float = DUPLICATE_THRESHOLD,
                   progress: Progress | None = None) -> list[DuplicateGroup]:
        """Groups of papers that are one paper under different ids (near-duplicates: nearly
        the same vectors and alike titles), the most alike first."""
        return duplicate_papers.find(self._checked(), threshold, progress)

    @_one_at_a_time
    def map(self, rebuild: bool = False, progress: Progress | None = None,
            fit: bool = True) -> CollectionMap:
        """The map of the collection: every paper's place and region, and the regions with
        their labels. Fitted (a write) the first time, or with ``rebuild``; otherwise the map
        fitted before, with papers added since placed onto it, nobody moved. With ``fit``
        false, a collection without a map is an error rather than a write."""
        if rebuild or self._open().commit.derived_part(collection_map.KIND) is None:
            if not fit:
                raise QueryError("the index has no map yet: make it with `semsearch map` "
                                 "(fitted once, then kept with the index)")
            with self._writing():
                collection_map.fit(self.folder, progress=progress)
        return collection_map.read(self._checked())

    # -- what the engine holds ----------------------------------------------------------------

    def _open(self) -> IndexView:
        """The state this engine reads, pinned when first needed."""
        if self._view is None:
            self._view = IndexView(Snapshot.pin(self.folder))
        return self._view

    def _checked(self) -> IndexView:
        """The state, its files checked to be as long as recorded: once per call that reads
        them through memory maps (see ``Snapshot.check_sizes``)."""
        view = self._open()
        view.snapshot.check_sizes()
        return view

    @property
    def query_embedder(self) -> Embedder:
        """The index's model on onnxruntime (or OpenVINO, in bf16), loaded on first use."""
        if self._query_embedder is None:
            papers = self._view.count if self._view is not None else 0
            self._query_embedder = OnnxEmbedder(
                self._model_for_use(), spin=False,
                threads=1 if papers >= ONE_QUERY_THREAD_FROM else 0,
                bf16_queries=self._bf16_queries)
        return self._query_embedder

    def _document_embedder(self, quantized: bool) -> Embedder:
        """The model for papers: ONNX fp32 (the same vectors as sentence-transformers, loaded
        in a fraction of the time), or int8 when quantized."""
        if self._embedder is not None:
            return self._embedder
        if quantized not in self._document_embedders:
            model = self._model_for_use()
            if self._ray is not None:
                from semsearch.ray_embedding import RayEmbedder

                self._document_embedders[quantized] = RayEmbedder(model, quantized, self._ray)
            else:
                self._document_embedders[quantized] = OnnxEmbedder(model, quantized=quantized)
        return self._document_embedders[quantized]

    def _let_go_of_clusters(self) -> None:
        """Stop a Ray instance a write started (one per write: a build of hours should not
        leave it running, and the next write starts its own)."""
        if self._ray is None:
            return
        from semsearch.ray_embedding import RayEmbedder

        for embedder in self._document_embedders.values():
            if isinstance(embedder, RayEmbedder):
                embedder.close()

    def _embedding_for(self, manifest: Manifest) -> indexing.Embedding:
        """How an update embeds: the index's model, int8 if the index was built so (unless
        ``quantized`` says otherwise). Given the manifest read under the writer lock."""
        self._check_model(manifest)
        quantized = manifest.quantized if self._quantized is None else self._quantized
        embedder = self._document_embedder(quantized)
        return indexing.Embedding(model=manifest.model, embed=embedder.embed_documents,
                                  quantized=quantized, batch=_batch_of(embedder))

    def _probe_embedder(self, texts: list[str]) -> np.ndarray | None:
        """Probe texts embedded as queries, or None where the model cannot be loaded."""
        try:
            return self.query_embedder.embed_queries(texts)
        except SemsearchError:
            return None

    def _model_for_use(self) -> str | None:
        """The model asked for; else the existing index's own; else the bundled one (also when
        the index cannot be read: a build may be replacing a broken one)."""
        if self._model is None and self.folder.exists():
            try:
                return self.folder.manifest().model
            except StoreError:
                return None
        return self._model

    # -- helpers ------------------------------------------------------------------------------

    def _query_vectors(self, texts: list[str]) -> np.ndarray:
        self._check_model(self._open().manifest)
        vectors = self.query_embedder.embed_queries(texts)
        self._check_dimension(vectors)
        return vectors

    def _allowed(self, where: Filter | None) -> np.ndarray | None:
        """The rows that pass the filter, or None for no filter. A filter that lets no paper
        through is a mistake more often than not, so it is said, with the closest values."""
        if not where:
            return None
        documents = self._open().documents
        rows = documents.rows_matching(where)
        if not len(rows):
            raise QueryError(f"no paper in {self.folder.path} "
                             f"{documents.why_nothing_matches(where)}")
        return rows

    def _hits(self, answers: list[list[tuple[int, float]]],
              cosine_to: np.ndarray | None = None) -> list[list[Hit]]:
        """Hits for each answer's ranked (row, score) pairs, their papers fetched in one go.
        Given query vectors (``cosine_to``, one an answer), each hit also carries its cosine
        similarity to its query."""
        view = self._open()
        found = view.documents.fields_by_rows({row for ranked in answers for row, _ in ranked})
        hits = []
        for position, ranked in enumerate(answers):
            cosines = [None] * len(ranked)
            if cosine_to is not None and ranked:
                cosines = (view.vectors([row for row, _ in ranked]) @ cosine_to[position]).tolist()
            if missing := [row for row, _ in ranked if row not in found]:
                raise StoreError(f"{self.folder.path}: row {missing[0]} was found by a search "
                                 f"but holds no paper: the index does not match its record; "
                                 f"run `semsearch verify`")
            hits.append([_hit(rank, found[row], score, cosine)
                         for rank, ((row, score), cosine) in enumerate(zip(ranked, cosines),
                                                                        start=1)])
        return hits

    def _row_of(self, id_or_title: str) -> int:
        """A paper named by its id, a name its source gave it (a citation key, a Zotero key),
        its title, or the start of its title (a short name such as "MM-Embed", the part
        before the colon), ignoring case and punctuation."""
        key = id_or_title.strip()
        if not key:
            raise QueryError("give a paper id or title")
        documents = self._open().documents
        row = documents.row_of_id(key)
        if row is not None:
            return row
        aliased = documents.rows_of_alias(key)
        if len(aliased) == 1:
            return aliased[0]
        exact = documents.rows_of_title(key)
        if exact:
            return exact[0]
        rows = documents.rows_of_title_start(key)
        if len(rows) == 1:
            return rows[0]
        if rows:
            titles = [doc.title for doc in documents.by_rows(rows[:5]).values()]
            raise QueryError(f"{key!r} begins {len(rows)} titles in {self.folder.path}: "
                             + "; ".join(repr(t) for t in titles)
                             + ("; ..." if len(rows) > 5 else "") + "; give more of it, or the id")
        suggestions = self._closest_titles(key)
        hint = ("; closest titles: " + "; ".join(repr(t) for t in suggestions)) if suggestions \
            else ""
        raise UnknownPaper(f"no paper with id or title {key!r} in {self.folder.path}{hint}")

    def _closest_titles(self, key: str, count: int = 3) -> list[str]:
        """Titles spelled most like ``key``, whole or up to their colon: among the papers BM25
        finds for its words (and every paper, in a small collection), so a typo costs a search
        however large the index."""
        view = self._open()
        candidates = view.lexical(key, 50)[1].tolist()
        titles = [doc.title for doc in view.documents.by_rows(candidates).values()]
        if view.count <= SUGGEST_FROM_ALL_UP_TO:
            seen = set(titles)
            titles += [title for title in view.documents.titles() if title not in seen]
        wanted = key.casefold()

        def likeness(title: str) -> float:
            short = title.split(":", 1)[0]
            return max(difflib.SequenceMatcher(None, wanted, form.casefold()).ratio()
                       for form in (title, short))

        ranked = sorted(((likeness(t), t) for t in titles), reverse=True)
        return [title for score, title in ranked[:count] if score >= 0.4]

    def _check_model(self, manifest: Manifest) -> None:
        asked = self._embedder.model_name if self._embedder else (
            model_name_for(self._model) if self._model else None)
        if asked is not None and asked != manifest.model:
            raise StoreError(f"{self.folder.path} was built with the model {manifest.model!r} and "
                             f"cannot be used with {asked!r}; rebuild it, or drop --model")

    def _check_dimension(self, vectors: np.ndarray) -> None:
        dimension = self._open().manifest.dimension
        if vectors.shape[-1] != dimension:
            raise StoreError(f"{self.folder.path} holds vectors of dimension "
                             f"{dimension}, the query has {vectors.shape[-1]}")


def _query_text(text: str) -> str:
    """The query as searched: trimmed, and cut to MAX_QUERY_CHARS (the model reads its first
    256 word pieces; BM25 its rarest terms)."""
    if not text or not text.strip():
        raise QueryError("the query is empty")
    return text.strip()[:MAX_QUERY_CHARS]


def _check_dedup(dedup: str) -> None:
    if dedup not in DEDUP_MODES:
        raise QueryError(f"unknown dedup {dedup!r}; choose one of {', '.join(DEDUP_MODES)}")


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0 or k > MAX_K:
        raise QueryError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")


def _hit(rank: int, paper: PaperFields, score: float, cosine: float | None = None) -> Hit:
    doc_id, title, abstract, metadata = paper
    return Hit(rank=rank, id=doc_id, title=title, score=score, abstract=abstract,
               metadata=metadata, cosine=cosine)


def _batch_of(embedder: Embedder) -> int:
    """Papers to hand the embedder at a time: its own preference (a cluster's window), else
    the build's batch."""
    return getattr(embedder, "preferred_batch", indexing.EMBED_BATCH)
