"""The engine: builds an index from documents and answers queries over it.

It ties the store (documents and files), the vector index and the embedder together; the CLI
and library users both go through it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch import ann, store
from semsearch.documents import Document, Explanation, Hit
from semsearch.embedding import (Embedder, OnnxEmbedder, SentenceTransformerEmbedder,
                                 model_dimension, model_name_for)
from semsearch.errors import InputError, QueryError, SemsearchError, StoreError
from semsearch.filters import Filter
from semsearch.fusion import FusionSettings, Ranking, fuse
from semsearch.lexical import LexicalIndex, LexicalSettings

#: progress(stage, done, total): stage is "reading" (total unknown) or "embedding"
Progress = Callable[[str, int, "int | None"], None]

MAX_K = 10_000
#: up to this many papers, an unknown title is compared with every title for suggestions
SUGGEST_FROM_ALL_UP_TO = 20_000
EMBED_BATCH = 256
#: search modes; hybrid fuses the other two and scores best on SciFact and Cranfield
MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"
#: ways to turn papers a user likes (and dislikes) into a query; see more_like_these
LIKE_METHODS = ("classifier", "rocchio")
DEFAULT_LIKE_METHOD = "classifier"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


@dataclass(frozen=True)
class BuildReport:
    """What a build did: every document read is either indexed, a duplicate, or replaced."""

    read: int
    duplicates: int
    replaced: int
    indexed: int
    seconds: float
    #: ids read more than once with different texts (the last version was kept), the first few
    repeated_ids: tuple[str, ...] = ()
    #: papers indexed without an abstract: the model and BM25 read their titles only
    without_abstract: int = 0


@dataclass(frozen=True)
class UpdateReport:
    """What an add or remove did. Only ``new`` and ``updated`` documents were embedded."""

    read: int
    new: int
    updated: int
    unchanged: int
    duplicates: int
    removed: int
    #: ids read more than once in this update with different texts (the last version counts)
    repeated: int
    repeated_ids: tuple[str, ...]  # the first few
    count: int
    seconds: float
    #: new and updated papers without an abstract, searched by their titles
    without_abstract: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.removed)


@dataclass(frozen=True)
class IndexInfo:
    path: str
    model: str
    dimension: int
    metric: str
    count: int
    index_type: str
    #: search parameters of the vector index, and the recall@10 measured for them at build
    index_params: dict
    tuned_recall_at_10: float | None
    #: documents added and removed since the vector index was trained (see `reindex`)
    changed_since_build: dict
    created: str
    format_version: int
    bytes_on_disk: int
    #: whether the documents were embedded by the int8 model (`index --quantized`)
    quantized: bool = False
    #: how many query probes, held out from tuning, ``tuned_recall_at_10`` was measured on,
    #: and what they were ("titles": fragments of sampled titles embedded as queries; "given":
    #: the query vectors passed to the build; "documents": document vectors moved away)
    recall_probes: int = 0
    recall_probe_kind: str = ""


class Engine:
    """One index, opened lazily: nothing is read until a query or build needs it.

    ``location`` is an index name (a folder under ``indexes/`` or $SEMSEARCH_INDEX_ROOT) or a
    path. ``model`` is a local sentence-transformers folder; by default the bundled
    all-MiniLM-L6-v2 for a new index, and the index's own model for an existing one.
    Queries are embedded by onnxruntime (no torch). ``bf16_queries=True`` embeds them in bf16 on
    OpenVINO instead, where it is installed (``pip install semsearch[bf16]``) and the CPU
    computes bf16 natively: faster for a process that runs many queries, after compiling at
    each query length's first use (see ``semsearch.bf16_queries`` and benchmarks/README.md).
    Builds embed with sentence-transformers, or with an int8 ONNX model when ``quantized=True``
    (about twice as fast, slightly less exact); ``add`` embeds as the index was built unless
    ``quantized`` says otherwise.
    ``embedder`` replaces the model for both (for tests, or your own embedding function).
    ``fusion`` says how hybrid search combines the dense and BM25 rankings.
    """

    def __init__(self, location: str | Path | None = None, *, model: str | None = None,
                 embedder: Embedder | None = None, quantized: bool | None = None,
                 bf16_queries: bool = False, fusion: FusionSettings = FusionSettings()):
        self.folder = store.IndexFolder(store.resolve(location))
        self.fusion = fusion
        self._model = model
        self._embedder = embedder
        self._quantized = quantized
        self._bf16_queries = bf16_queries
        self._query_embedder: Embedder | None = embedder
        self._document_embedder: Embedder | None = embedder
        self._snapshot: store.Snapshot | None = None
        self._vectors: ann.VectorIndex | None = None
        self._lexical: LexicalIndex | None = None

    @classmethod
    def open(cls, location: str | Path | None = None, **options) -> Engine:
        """An existing index; fails now, not at the first query, if there is none."""
        engine = cls(location, **options)
        engine._check_model(engine.manifest)
        return engine

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the snapshot this engine reads; the next call opens the live state."""
        if self._snapshot is not None:
            self._snapshot.close()
        self._vectors = self._lexical = self._snapshot = None

    def refresh(self) -> bool:
        """Move to the index's live state if a write has changed it since this engine opened
        its snapshot; whether it moved. Until then, every query answers from that snapshot."""
        if self._snapshot is None or self.folder.generation().name == self._snapshot.name:
            return False
        self.close()
        return True

    # -- building ---------------------------------------------------------------------------

    def build(self, documents: Iterable[Document], vectors: np.ndarray | None = None,
              progress: Progress | None = None, index_type: str = "auto",
              target_recall: float = ann.DEFAULT_TARGET_RECALL,
              lexical: LexicalSettings = LexicalSettings(), force: bool = False,
              query_vectors: np.ndarray | None = None) -> BuildReport:
        """Replace the index's contents with ``documents``, deduplicated.

        ``vectors`` (one row per document, in order) skips the model: for users who bring
        their own embeddings. ``index_type`` is "auto" (chosen by size, see ``ann.choose_kind``)
        or one of ``ann.INDEX_TYPES``; approximate types are tuned to ``target_recall`` on
        probes like real queries: ``query_vectors`` (queries of your own, with your own
        vectors), else short fragments of sampled titles embedded by the model.
        The old contents stay live until the new ones are complete. ``force`` builds in a
        folder that holds other things (they are left alone).
        """
        embedder = None if vectors is not None else self.document_embedder
        model = embedder.model_name if embedder else model_name_for(self._model)
        if vectors is not None:
            expected = model_dimension(self._model)
            given = np.shape(vectors)[-1] if np.ndim(vectors) == 2 else None
            if expected is not None and given != expected:
                raise InputError("vectors", None, f"vectors of dimension {given}, but the model "
                                                  f"{model} makes {expected}: give model= the "
                                                  f"model that made them")
        report = self._build(documents, vectors, model, embedder, progress, index_type,
                             target_recall, lexical, force, query_vectors)
        if embedder is not None and isinstance(self.query_embedder, OnnxEmbedder):
            self.query_embedder.prepare()  # export (and convert) now: no query waits for it
        return report

    def rebuild(self, index_type: str | None = None, lexical: LexicalSettings | None = None,
                target_recall: float = ann.DEFAULT_TARGET_RECALL,
                progress: Progress | None = None) -> BuildReport:
        """Build again from the stored documents and vectors, with another index type, a new
        recall target, or other BM25 settings; nothing is re-embedded.

        It reads the live state under the writer lock, so no write lands between what it
        reads and what it commits (a concurrent write is refused until it is done)."""
        started = time.perf_counter()
        progress = progress or _no_progress
        with self.folder.new_generation(update=True) as generation:
            base = generation.base
            manifest = base.manifest
            stored = ann.load_index(manifest.index_type, base.part(store.VECTORS),
                                    manifest.tuning.get("params"))
            table = generation.documents
            rows, matrices, done, count = [], [], 0, len(table)
            for batch in table.batches(EMBED_BATCH):
                batch_rows = np.array([row for row, _ in batch], dtype=np.int64)
                rows.append(batch_rows)
                matrices.append(np.stack([stored.vector(row) for row in batch_rows]))
                done += len(batch)
                progress("reading", done, count)
            del stored
            lexical = lexical or LexicalSettings(**manifest.lexical)
            self._index_and_commit(generation, np.concatenate(rows), np.concatenate(matrices),
                                   index_type or manifest.index_type, target_recall, lexical,
                                   manifest.model, progress, quantized=manifest.quantized)
        return BuildReport(read=count, duplicates=0, replaced=0, indexed=count,
                           seconds=time.perf_counter() - started)

    def add(self, documents: Iterable[Document], progress: Progress | None = None) -> UpdateReport:
        """Add documents to the index, or update them by id, without rebuilding it.

        A document whose title and abstract are unchanged is not embedded again (its metadata
        is refreshed); a changed one is re-embedded. The vector index takes the new vectors
        as they are, without re-training; `rebuild` re-trains it.
        """
        return self._update(documents, [], progress, documents_given=True)

    def remove(self, ids: Iterable[str]) -> UpdateReport:
        """Remove documents by id. Every id must be in the index, or nothing is removed."""
        ids = list(ids)
        if not ids:
            raise QueryError("give the id of at least one paper to remove")
        return self._update((), ids, None)

    @staticmethod
    def dry_run(documents: Iterable[Document], progress: Progress | None = None) -> BuildReport:
        """Read, validate and deduplicate as a build would, writing no index and embedding
        nothing: to check a large input, and how fast it parses."""
        started = time.perf_counter()
        tally = _Tally()
        with store.scratch_table() as table:
            for _ in _staged(table, documents, progress, tally):
                pass
            return tally.report(table, started)

    def _build(self, documents: Iterable[Document], vectors: np.ndarray | None, model: str,
               embedder: Embedder | None, progress: Progress | None, index_type: str,
               target_recall: float, lexical: LexicalSettings, force: bool,
               query_vectors: np.ndarray | None = None) -> BuildReport:
        started = time.perf_counter()
        progress = progress or _no_progress
        tally = _Tally()
        outcomes = tally.outcomes
        given: dict[int, np.ndarray] = {}
        with self.folder.new_generation(force=force) as generation:
            table = generation.documents
            for position, outcome, row in _staged(table, documents, progress, tally):
                if vectors is not None and outcome != "duplicate":
                    if position >= len(vectors):
                        raise InputError("vectors", None, f"fewer vectors ({len(vectors)}) than documents")
                    given[row] = vectors[position]
            count = len(table)
            if count == 0:
                raise InputError(None, None, "the input holds no documents; no index was written")
            if vectors is not None and len(vectors) != sum(outcomes.values()):
                raise InputError("vectors", None, f"{len(vectors)} vectors for "
                                                  f"{sum(outcomes.values())} documents")
            all_rows, matrices, done = [], [], 0
            for batch in table.batches(EMBED_BATCH):
                rows = np.array([row for row, _ in batch], dtype=np.int64)
                if embedder is None:
                    matrix = _normalised(np.stack([given[row] for row in rows]))
                else:
                    matrix = embedder.embed_documents([doc.text for _, doc in batch])
                all_rows.append(rows)
                matrices.append(matrix)
                done += len(batch)
                progress("embedding", done, count)
            given.clear()
            report = tally.report(table, started)
            self._index_and_commit(generation, np.concatenate(all_rows), np.concatenate(matrices),
                                   index_type, target_recall, lexical, model, progress,
                                   quantized=embedder is not None and self._embeds_quantized(),
                                   query_vectors=query_vectors)
        return dataclasses.replace(report, seconds=time.perf_counter() - started)

    def _index_and_commit(self, generation: store.GenerationWriter, rows: np.ndarray,
                          matrix: np.ndarray, index_type: str, target_recall: float,
                          lexical: LexicalSettings, model: str, progress: Progress,
                          quantized: bool = False,
                          query_vectors: np.ndarray | None = None) -> None:
        """Build the vector index and BM25 over a generation's documents, and commit it."""
        kind = ann.choose_kind(len(rows)) if index_type == "auto" else index_type
        probes, probe_kind = (None, "")
        if kind != "exact":
            progress("probes", 0, 1)
            probes, probe_kind = self._tuning_probes(generation.documents, matrix.shape[1],
                                                     query_vectors)
        progress("indexing", 0, 1)
        index, tuning = ann.build_index(kind, rows, matrix, target_recall, probes, probe_kind)
        index.save(generation.vectors_path)
        progress("indexing", 1, 1)
        _build_lexical(generation.documents, lexical, generation.lexical_path)
        count = len(generation.documents)
        self.close()
        generation.commit(store.Manifest(
            model=model, dimension=index.dimension, count=count, index_type=index.kind,
            lexical=dataclasses.asdict(lexical), tuning=dataclasses.asdict(tuning),
            quantized=quantized))

    def _tuning_probes(self, table: store.DocumentTable, dimension: int,
                       given: np.ndarray | None) -> tuple[np.ndarray | None, str]:
        """Query vectors to tune an approximate index on: the ones given, else short fragments
        of sampled titles (3 to 8 words, as people type) embedded as queries by the index's
        model; none where there is no model to embed them (vectors of your own without it)."""
        if given is not None:
            return _normalised(np.asarray(given, dtype=np.float32)), "given"
        rng = np.random.default_rng(0)
        rows = table.random_rows(2 * ann.PROBES, rng)
        texts = [_fragment(document, rng) for document in table.by_rows(rows).values()]
        try:
            probes = self.query_embedder.embed_queries([t for t in texts if t])
        except SemsearchError:
            return None, ""
        return (probes, "titles") if probes.shape[-1] == dimension else (None, "")

    def _update(self, documents: Iterable[Document], remove_ids: list[str],
                progress: Progress | None, documents_given: bool = False) -> UpdateReport:
        started = time.perf_counter()
        progress = progress or _no_progress
        outcomes: Counter[str] = Counter()
        repeated: list[str] = []
        # The live state is read under the writer lock (``generation.base``), not the snapshot
        # this engine may have opened long ago: a write always builds on the latest state.
        with self.folder.new_generation(update=True) as generation:
            manifest = generation.base.manifest
            self._check_model(manifest)
            table = generation.documents
            vectors = ann.load_index(manifest.index_type, generation.base.part(store.VECTORS),
                                     manifest.tuning.get("params"), for_update=True)
            next_row = 1 + max(table.highest_row(), vectors.highest_row())
            fresh: set[int] = set()    # rows to embed
            untitled: set[int] = set()  # of those, the ones with no abstract (title only)
            dropped: list[int] = []    # rows to take out of the vector index
            for position, document in enumerate(documents):
                outcome, old_row = table.upsert(document, next_row)
                outcomes[outcome] += 1
                if outcome in ("new", "updated"):
                    fresh.add(next_row)
                    if not document.abstract:
                        untitled.add(next_row)
                    next_row += 1
                if old_row in fresh:  # the same id twice in this update: the last one wins
                    fresh.discard(old_row)
                    outcomes[outcome] -= 1  # counted once, as its first version
                    repeated.append(document.id)
                elif old_row is not None:
                    dropped.append(old_row)
                if position % 1000 == 0:
                    progress("reading", position + 1, None)
            if documents_given and not sum(outcomes.values()):
                raise InputError(None, None, "the input holds no documents; nothing was changed")
            unknown = []
            for doc_id in remove_ids:
                row = table.delete(doc_id)
                if row is None:
                    unknown.append(doc_id)
                elif row in fresh:
                    fresh.discard(row)
                else:
                    dropped.append(row)
            if unknown:
                raise QueryError(f"no paper with id {', '.join(map(repr, unknown[:5]))}"
                                 f"{' and more' if len(unknown) > 5 else ''} in "
                                 f"{self.folder.path}; nothing was removed")
            count = len(table)
            report = UpdateReport(
                read=sum(outcomes[o] for o in ("new", "updated", "unchanged", "duplicate"))
                + len(repeated), new=outcomes["new"], updated=outcomes["updated"],
                unchanged=outcomes["unchanged"], duplicates=outcomes["duplicate"],
                removed=len(dropped) - outcomes["updated"], repeated=len(repeated),
                repeated_ids=tuple(repeated[:5]), count=count, seconds=0.0,
                without_abstract=len(untitled & fresh))
            if count == 0:
                raise InputError(str(self.folder.path), None,
                                 "this would leave the index empty; nothing was changed "
                                 "(delete the folder to drop the whole index)")
            if not table.modified:  # nothing new: no new generation either
                return dataclasses.replace(report, seconds=time.perf_counter() - started)
            done = 0
            for batch in table.batches_of_rows(sorted(fresh), EMBED_BATCH):
                vectors.add(np.array([row for row, _ in batch], dtype=np.int64),
                            self.document_embedder.embed_documents([doc.text for _, doc in batch]))
                done += len(batch)
                progress("embedding", done, len(fresh))
            if dropped:
                vectors.remove(np.array(dropped, dtype=np.int64))
            vectors.save(generation.vectors_path)
            _build_lexical(table, LexicalSettings(**manifest.lexical), generation.lexical_path)
            changed = {"added": manifest.changed_since_build["added"] + len(fresh),
                       "removed": manifest.changed_since_build["removed"] + len(dropped)}
            self.close()
            generation.commit(dataclasses.replace(manifest, count=count,
                                                  changed_since_build=changed))
        return dataclasses.replace(report, seconds=time.perf_counter() - started)

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

    def search_many(self, texts: Sequence[str], k: int = 10, mode: str = DEFAULT_MODE,
                    where: Filter | None = None, explain: bool = False) -> list[list[Hit]]:
        """``search`` for many queries in one call, each answered as ``search`` would: the
        queries are embedded in batches and the vector index searches them together, on every
        core. For evaluations and scripts with many queries."""
        texts = [_query_text(text) for text in texts]
        _check_k(k)
        _check_mode(mode)
        allowed = self._allowed(where)
        vectors = self._query_vectors(texts) if texts and (mode != "lexical" or explain) \
            else None
        depth = self._depth(k, mode)
        dense = self._dense_many(vectors, depth, allowed=allowed) if mode != "lexical" \
            else [None] * len(texts)
        answers = []
        for position, text in enumerate(texts):
            lexical = self.lexical.search(text, depth, allowed) if mode != "dense" else None
            answers.append(self._combined(dense[position], lexical, k))
        cosine_to = vectors if mode == "hybrid" else None
        hits = self._hits_many(answers, cosine_to)
        if explain:
            hits = [self._explained(text, vector, found)
                    for text, vector, found in zip(texts, vectors, hits)]
        return hits

    def search_vector(self, vector: np.ndarray, k: int = 10,
                      exclude: frozenset[int] = frozenset(),
                      where: Filter | None = None) -> list[Hit]:
        """The k documents closest to a vector of your own (normalised to unit length)."""
        [hits] = self.search_vectors(np.asarray(vector, dtype=np.float32).reshape(1, -1), k,
                                     exclude, where)
        return hits

    def search_vectors(self, vectors: np.ndarray, k: int = 10,
                       exclude: frozenset[int] = frozenset(),
                       where: Filter | None = None) -> list[list[Hit]]:
        """``search_vector`` for each row of ``vectors``, searched together on every core."""
        _check_k(k)
        vectors = _normalised(np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1))
        self._check_dimension(vectors)
        allowed = self._allowed(where)
        rankings = self._dense_many(vectors, k, exclude, allowed)
        return self._hits_many([_pairs(ranking) for ranking in rankings])

    def more_like_this(self, id_or_title: str, k: int = 10,
                       where: Filter | None = None) -> list[Hit]:
        """Papers closest in meaning to one already in the index (its stored vector, so as
        fast as a search); never itself. ``more_like_these`` takes several, and negatives."""
        row = self._row_of(id_or_title)
        return self.search_vector(self.vectors.vector(row), k, exclude=frozenset({row}),
                                  where=where)

    def more_like_these(self, positives: Iterable[str], negatives: Iterable[str] = (),
                        k: int = 10, method: str = DEFAULT_LIKE_METHOD,
                        mode: str = DEFAULT_MODE, where: Filter | None = None,
                        explain: bool = False) -> list[Hit]:
        """Papers like all of ``positives`` and unlike ``negatives`` (ids or titles); none of
        them is returned.

        The dense side searches from the stored vectors: "classifier" (the default) trains a
        logistic regression per query, positives against the negatives and 200 random papers,
        and searches by its weight vector; "rocchio" from the mean of the positives minus a
        quarter of the negatives' mean. In "hybrid" mode (the default) the positives' texts
        also go to BM25 as one query, fused as in search. Measured with relevance feedback on
        Cranfield: see benchmarks/README.md.

        Each hit's score is its cosine similarity to the liked papers' mean vector; ``explain``
        adds its sentence closest to that mean and the liked papers' title words it contains.
        """
        positive_rows = [self._row_of(p) for p in positives]
        negative_rows = [self._row_of(n) for n in negatives]
        if not positive_rows:
            raise QueryError("give at least one paper to find papers like")
        if both := set(positive_rows) & set(negative_rows):
            shown = self.documents.by_rows(both)
            raise QueryError("a paper cannot be both liked and not liked: " + "; ".join(
                repr(shown[row].title or shown[row].id) for row in sorted(both)))
        if method not in LIKE_METHODS:
            raise QueryError(f"unknown method {method!r}; choose one of {', '.join(LIKE_METHODS)}")
        _check_mode(mode)
        _check_k(k)
        exclude = frozenset(positive_rows + negative_rows)
        allowed = self._allowed(where)
        depth = self._depth(k, mode)
        dense = lexical = None
        liked = np.stack([self.vectors.vector(row) for row in positive_rows])
        centre = _normalised(liked.mean(axis=0, keepdims=True))[0]
        if mode != "lexical":
            disliked = np.stack([self.vectors.vector(row) for row in negative_rows]) \
                if negative_rows else np.zeros((0, liked.shape[1]), np.float32)
            if method == "rocchio" or (len(liked) == 1 and not len(disliked)):
                # one paper and nothing to contrast it with: its own vector is the query
                query = liked.mean(axis=0) - (0.25 * disliked.mean(axis=0) if len(disliked) else 0)
            else:
                query = self._classifier_direction(liked, disliked, set(exclude))
            dense = self._dense(_normalised(query.reshape(1, -1))[0], depth, exclude, allowed)
        found = self.documents.by_rows(positive_rows)
        if mode != "dense":
            text = " ".join(found[row].text for row in positive_rows)
            scores, rows = self.lexical.search(text, depth + len(exclude), allowed)
            keep = ~np.isin(rows, list(exclude))
            lexical = (scores[keep][:depth], rows[keep][:depth])
        hits = self._hits(self._combined(dense, lexical, k),
                          centre if mode != "lexical" else None)
        if not explain:
            return hits
        titles = " ".join(found[row].title or found[row].text for row in positive_rows)
        return self._explained(titles, centre, hits)

    def _classifier_direction(self, liked: np.ndarray, disliked: np.ndarray,
                              known: set[int]) -> np.ndarray:
        """The weights of a logistic regression separating liked papers from disliked and
        random ones: ranking by them is an inner-product search, so the index answers it."""
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(0)
        sample = self.documents.random_rows(200, rng)
        others = [self.vectors.vector(row) for row in sample if row not in known]
        features = np.concatenate([liked, disliked, np.stack(others)]) if others \
            else np.concatenate([liked, disliked])
        labels = np.r_[np.ones(len(liked)), np.zeros(len(features) - len(liked))]
        if labels.min() == labels.max():
            return liked.mean(axis=0)
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
        model.fit(features, labels)
        return model.coef_[0].astype(np.float32)

    def get(self, id_or_title: str) -> Document:
        """A stored document by id, or by title ignoring case."""
        row = self._row_of(id_or_title)
        return self.documents.by_rows([row])[row]

    def verify(self) -> list[str]:
        """Problems found re-reading every file of the index; an empty list means intact."""
        return self.folder.verify()

    def recover(self) -> str:
        """Make the newest intact generation live, after damage or an interrupted write left
        the live one unreadable; its name. Nothing newer than what was live is used."""
        self.close()
        return self.folder.recover()

    def info(self) -> IndexInfo:
        manifest = self.manifest
        return IndexInfo(path=str(self.folder.path), model=manifest.model,
                         dimension=manifest.dimension, metric=manifest.metric,
                         count=manifest.count, index_type=manifest.index_type,
                         index_params=manifest.tuning.get("params", {}),
                         tuned_recall_at_10=manifest.tuning.get("recall_at_10"),
                         changed_since_build=dict(manifest.changed_since_build),
                         created=manifest.created, format_version=manifest.format_version,
                         bytes_on_disk=sum(f.get("bytes", 0) for f in manifest.files.values()),
                         quantized=manifest.quantized,
                         recall_probes=manifest.tuning.get("sample_queries", 0),
                         recall_probe_kind=manifest.tuning.get("probes", ""))

    # -- lazily opened parts ----------------------------------------------------------------

    @property
    def snapshot(self) -> store.Snapshot:
        """The state this engine reads, pinned when first needed: every part it opens comes
        from it, however many writes switch the index to newer states meanwhile (see
        ``refresh``)."""
        if self._snapshot is None:
            self._snapshot = store.Snapshot.pin(self.folder)
        return self._snapshot

    @property
    def manifest(self) -> store.Manifest:
        return self.snapshot.manifest

    @property
    def documents(self) -> store.DocumentTable:
        return self.snapshot.documents

    @property
    def vectors(self) -> ann.VectorIndex:
        if self._vectors is None:
            manifest = self.manifest
            self._vectors = ann.load_index(manifest.index_type, self.snapshot.part(store.VECTORS),
                                           manifest.tuning.get("params"))
        return self._vectors

    @property
    def lexical(self) -> LexicalIndex:
        if self._lexical is None:
            self._lexical = LexicalIndex.load(self.snapshot.part(store.LEXICAL))
        return self._lexical

    @property
    def query_embedder(self) -> Embedder:
        """The index's model on onnxruntime (or OpenVINO, in bf16), loaded on first use."""
        if self._query_embedder is None:
            self._query_embedder = OnnxEmbedder(self._model_for_use(),
                                                bf16_queries=self._bf16_queries)
        return self._query_embedder

    @property
    def document_embedder(self) -> Embedder:
        """The model for building: sentence-transformers, or int8 ONNX when quantized (by
        default, as the index was built; a new index in fp32)."""
        if self._document_embedder is None:
            model = self._model_for_use()
            self._document_embedder = OnnxEmbedder(model, quantized=True) \
                if self._embeds_quantized() else SentenceTransformerEmbedder(model)
        return self._document_embedder

    def _embeds_quantized(self) -> bool:
        if self._quantized is not None:
            return self._quantized
        try:
            return self.folder.exists() and self.folder.manifest().quantized
        except StoreError:
            return False

    def _model_for_use(self) -> str | None:
        """The model asked for; else the existing index's own; else the bundled one (also when
        the index cannot be read: a build may be replacing a broken one)."""
        if self._model is None and self.folder.exists():
            try:
                return self.folder.manifest().model
            except StoreError:
                return None
        return self._model

    # -- ranking ----------------------------------------------------------------------------

    def _query_vector(self, text: str) -> np.ndarray:
        return self._query_vectors([text])[0]

    def _query_vectors(self, texts: list[str]) -> np.ndarray:
        self._check_model(self.manifest)
        vectors = self.query_embedder.embed_queries(texts)
        self._check_dimension(vectors)
        return vectors

    def _dense(self, vector: np.ndarray, k: int, exclude: frozenset[int] = frozenset(),
               allowed: np.ndarray | None = None) -> Ranking:
        """(scores, rows) of the nearest vectors, best first, without the excluded rows."""
        return self._dense_many(vector.reshape(1, -1), k, exclude, allowed)[0]

    def _dense_many(self, vectors: np.ndarray, k: int, exclude: frozenset[int] = frozenset(),
                    allowed: np.ndarray | None = None) -> list[Ranking]:
        """``_dense`` for each row of ``vectors``, in one search of the vector index."""
        depth = min(k + len(exclude), len(self.vectors) if allowed is None else len(allowed))
        scores, rows = self.vectors.search(vectors, depth, allowed=allowed)
        rankings = []
        for found_scores, found_rows in zip(scores, rows):
            keep = found_rows >= 0
            if exclude:
                keep &= ~np.isin(found_rows, list(exclude))
            rankings.append((found_scores[keep][:k], found_rows[keep][:k]))
        return rankings

    def _depth(self, k: int, mode: str) -> int:
        """How many candidates each side searches for: fusion wants a deeper pool."""
        return max(k, self.fusion.depth) if mode == "hybrid" else k

    def _combined(self, dense: Ranking | None, lexical: Ranking | None,
                  k: int) -> list[tuple[int, float]]:
        """The top k (row, score): from the one side searched, or both fused."""
        if lexical is None:
            return _pairs(dense)[:k]
        if dense is None:
            return _pairs(lexical)[:k]
        return fuse(dense, lexical, self.fusion)[:k]

    def _allowed(self, where: Filter | None) -> np.ndarray | None:
        """The rows that pass the filter, or None for no filter. A filter that lets no paper
        through is a mistake more often than not, so it is said, with the closest values."""
        if not where:
            return None
        rows = self.documents.rows_matching(where)
        if not len(rows):
            raise QueryError(f"no paper in {self.folder.path} "
                             f"{self.documents.why_nothing_matches(where)}")
        return rows

    def _explained(self, text: str, vector: np.ndarray, hits: list[Hit]) -> list[Hit]:
        """Each hit with its sentence closest to the query (by the same model) and the
        query's words it contains (by BM25's tokenisation and stemming, stopwords left out)."""
        sentences = [_sentences(hit.abstract) or [hit.title] for hit in hits]
        flat = [sentence for group in sentences for sentence in group]
        if not flat:
            return hits
        similarity = self.query_embedder.embed_queries(flat) @ vector
        rows = [self.documents.row_of_id(hit.id) for hit in hits]
        explained, start = [], 0
        for hit, row, group in zip(hits, rows, sentences):
            scores = similarity[start:start + len(group)]
            start += len(group)
            best = int(np.argmax(scores))
            explained.append(dataclasses.replace(hit, explanation=Explanation(
                sentence=group[best], sentence_score=float(scores[best]),
                matched_terms=self.lexical.matched_terms(text, row))))
        return explained

    def _hits(self, ranked: list[tuple[int, float]],
              cosine_to: np.ndarray | None = None) -> list[Hit]:
        return self._hits_many([ranked], None if cosine_to is None else cosine_to[None])[0]

    def _hits_many(self, answers: list[list[tuple[int, float]]],
                   cosine_to: np.ndarray | None = None) -> list[list[Hit]]:
        """Hits for each answer's ranked (row, score) pairs, their papers fetched in one go.
        Given query vectors (``cosine_to``, one an answer), each hit's score is its cosine
        similarity to its query, and what it was ranked by is kept as its ranking score."""
        found = self.documents.by_rows({row for ranked in answers for row, _ in ranked})
        hits = []
        for position, ranked in enumerate(answers):
            cosines = None
            if cosine_to is not None and ranked:
                cosines = self.vectors.vectors([row for row, _ in ranked]) @ cosine_to[position]
            hits.append([Hit(rank=rank, id=found[row].id, title=found[row].title,
                             score=score if cosines is None else float(cosines[rank - 1]),
                             abstract=found[row].abstract, metadata=found[row].metadata,
                             ranking_score=None if cosines is None else score)
                         for rank, (row, score) in enumerate(ranked, start=1)])
        return hits

    # -- checks -----------------------------------------------------------------------------

    def _row_of(self, id_or_title: str) -> int:
        """A paper named by its id, its title, or the start of its title (a short name such
        as "MM-Embed", the part before the colon), ignoring case and punctuation."""
        key = id_or_title.strip()
        if not key:
            raise QueryError("give a paper id or title")
        row = self.documents.row_of_id(key)
        if row is not None:
            return row
        rows = self.documents.rows_of_title(key) or self.documents.rows_of_title_start(key)
        if len(set(rows)) == 1 or (rows and self.documents.rows_of_title(key)):
            return rows[0]
        if rows:
            titles = [doc.title for doc in self.documents.by_rows(rows[:5]).values()]
            raise QueryError(f"{key!r} begins {len(rows)} titles in {self.folder.path}: "
                             + "; ".join(repr(t) for t in titles)
                             + ("; ..." if len(rows) > 5 else "") + "; give more of it, or the id")
        suggestions = self._closest_titles(key)
        hint = ("; closest titles: " + "; ".join(repr(t) for t in suggestions)) if suggestions \
            else ""
        raise QueryError(f"no paper with id or title {key!r} in {self.folder.path}{hint}")

    def _closest_titles(self, key: str, count: int = 3) -> list[str]:
        """Titles spelled most like ``key``, whole or up to their colon: among the papers BM25
        finds for its words (and every paper, in a small collection), so a typo costs a search
        however large the index."""
        candidates = {row: None for row in self.lexical.search(key, 50)[1].tolist()}
        titles = [doc.title for doc in self.documents.by_rows(candidates).values()]
        if len(self.documents) <= SUGGEST_FROM_ALL_UP_TO:
            titles += [title for title in self.documents.titles() if title not in titles]
        wanted = key.casefold()

        def likeness(title: str) -> float:
            short = title.split(":", 1)[0]
            return max(difflib.SequenceMatcher(None, wanted, form.casefold()).ratio()
                       for form in (title, short))

        ranked = sorted(((likeness(t), t) for t in titles), reverse=True)
        return [title for score, title in ranked[:count] if score >= 0.4]

    def _check_model(self, manifest: store.Manifest) -> None:
        asked = self._embedder.model_name if self._embedder else (
            model_name_for(self._model) if self._model else None)
        if asked is not None and asked != manifest.model:
            raise StoreError(f"{self.folder.path} was built with the model {manifest.model!r} and "
                             f"cannot be used with {asked!r}; rebuild it, or drop --model")

    def _check_dimension(self, vector: np.ndarray) -> None:
        if vector.shape[-1] != self.manifest.dimension:
            raise StoreError(f"{self.folder.path} holds vectors of dimension "
                             f"{self.manifest.dimension}, the query has {vector.shape[-1]}")


@dataclass
class _Tally:
    """What staging did to each document read, for the BuildReport."""

    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    repeated: list[str] = dataclasses.field(default_factory=list)  # the first few

    def record(self, outcome: str, document: Document) -> None:
        self.outcomes[outcome] += 1
        if outcome == "replaced" and len(self.repeated) < 5:
            self.repeated.append(document.id)

    def report(self, table: store.DocumentTable, started: float) -> BuildReport:
        return BuildReport(read=sum(self.outcomes.values()),
                           duplicates=self.outcomes["duplicate"],
                           replaced=self.outcomes["replaced"], indexed=len(table),
                           seconds=time.perf_counter() - started,
                           repeated_ids=tuple(self.repeated),
                           without_abstract=table.count_without_abstract())


def _staged(table: store.DocumentTable, documents: Iterable[Document],
            progress: Progress | None, tally: _Tally) -> Iterator[tuple[int, str, int]]:
    """(position, outcome, row) for each document, under the duplicate rules, tallied."""
    for position, document in enumerate(documents):
        outcome, row = table.stage(document)
        tally.record(outcome, document)
        if progress is not None and position % 1000 == 0:
            progress("reading", position + 1, None)
        yield position, outcome, row


def _build_lexical(table: store.DocumentTable, settings: LexicalSettings, path: Path) -> None:
    """BM25 over every stored document, saved into a generation being written."""
    LexicalIndex.build(((np.array([row for row, _ in batch]), [doc.text for _, doc in batch])
                        for batch in table.batches(EMBED_BATCH)), settings).save(path)


def _fragment(document: Document, rng: np.random.Generator) -> str:
    """A run of 3 to 8 words of a paper's title (or of its abstract, if it has none)."""
    words = (document.title or document.abstract).split()
    if len(words) <= 3:
        return " ".join(words)
    length = int(rng.integers(3, min(8, len(words)) + 1))
    start = int(rng.integers(0, len(words) - length + 1))
    return " ".join(words[start:start + length])


def _sentences(text: str) -> list[str]:
    """An abstract's sentences: split after . ! or ? where a capital, digit or bracket follows."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def _pairs(ranking: Ranking) -> list[tuple[int, float]]:
    scores, rows = ranking
    return [(int(row), float(score)) for score, row in zip(scores, rows)]


def _query_text(text: str) -> str:
    if not text or not text.strip():
        raise QueryError("the query is empty")
    return text.strip()


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise QueryError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k <= 0 or k > MAX_K:
        raise QueryError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")


def _normalised(matrix: np.ndarray) -> np.ndarray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def _no_progress(stage: str, done: int, total: int | None) -> None:
    pass
