"""Writing an index: a full build, updates (add and remove), merges, re-training (reindex),
and upgrading an index of format 1. Rows are allocated here, from the commit record: a new
paper always gets a row above every row ever used, so a row names one text forever.

A build streams: papers are staged and deduplicated in SQLite, then embedded in row order,
their vectors written straight to the segment's memory-mapped file and their postings to
bounded buffers; the vector index is trained on a sample and filled in chunks.
An update writes one small segment for what it adds, records tombstones for what it replaces
or removes, and commits; then the merge policy (``index.segments.plan``) may fold or merge.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from semsearch import _fs
from semsearch.documents import Document
from semsearch.errors import InputError, NoDocuments, QueryError, StoreError
from semsearch.index import lexical as bm25
from semsearch.index import segments as segment_files
from semsearch.index import vector
from semsearch.index.segments import Segment, SegmentSet, SegmentWriter
from semsearch.store import DocumentTable, FolderFiles, IndexFolder, scratch_table
from semsearch.reuse import Reuse, block_digest
from semsearch.store.folder import damaged_files
from semsearch.store.pending import PendingVectors, text_key
from semsearch.store.records import Commit, Manifest, SegmentInfo

#: progress(stage, done, total): stages "reading" (total unknown), "embedding", "lexical",
#: "checksums" (in bytes), "probes", "training", "filling", "tuning", "merging", "folding"
Progress = segment_files.Progress
#: texts (of probes) to query vectors, or None where there is no model to embed them
ProbeEmbedder = Callable[[list[str]], "np.ndarray | None"]
EMBED_BATCH = 256
#: rows embedded between two points a build interrupted later resumes from (it loses at most
#: the embedding of this many papers)
CHECKPOINT_ROWS = 32 * EMBED_BATCH


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
    #: papers whose vectors an interrupted build had written, taken instead of embedded again
    reused: int = 0
    #: papers whose title and abstract the index already held (embedded by the same model):
    #: their vectors were taken from it
    unchanged: int = 0
    #: papers an interrupted build had embedded whose vectors failed their checksum: embedded
    #: again
    damaged: int = 0
    #: near-duplicates folded into the paper that came first (``dedup="near"``)
    folded: int = 0


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
    #: what the merge policy did after the write, if anything: "merged" or "folded"
    merge: str = ""
    #: new and updated papers whose vectors an interrupted add had embedded: taken, not
    #: embedded again
    reused: int = 0
    #: near-duplicates folded into the paper that came first (``dedup="near"``)
    folded: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.removed)


@dataclass(frozen=True)
class Embedding:
    """How a write gets its vectors: a model (``embed``), or vectors given with the papers."""

    model: str
    embed: Callable[[list[str]], np.ndarray] | None = None
    given: np.ndarray | None = None
    quantized: bool = False
    #: papers handed to ``embed`` at a time (a cluster wants more at once than one process)
    batch: int = EMBED_BATCH


def no_progress(stage: str, done: int, total: int | None) -> None:
    """The progress callback of a caller that does not want one."""


# -- full builds ---------------------------------------------------------------------------

def build(folder: IndexFolder, documents: Iterable[Document], embedding: Embedding, *,
          index_type: str = "auto", target_recall: float = vector.DEFAULT_TARGET_RECALL,
          lexical: bm25.LexicalSettings = bm25.LexicalSettings(), force: bool = False,
          query_vectors: np.ndarray | None = None, probe_embedder: ProbeEmbedder | None = None,
          progress: Progress | None = None) -> BuildReport:
    """Replace the index's contents with ``documents``, deduplicated; the old contents stay
    live until the new ones are complete."""
    vector.check_kind(index_type)
    started = time.perf_counter()
    progress = progress or no_progress
    tally = _Tally()
    vectors = embedding.given
    position_of_row = np.zeros(1024, dtype=np.int64)  # given vectors: each row's, by row
    with folder.new_generation(force=force) as generation:
        table = generation.documents
        for position, outcome, row in _staged(table, documents, progress, tally):
            if vectors is not None and outcome != "duplicate":
                if position >= len(vectors):
                    raise InputError("vectors", None, f"fewer vectors ({len(vectors)}) than "
                                                      "documents")
                if row >= len(position_of_row):
                    position_of_row = np.resize(position_of_row, 2 * row)
                position_of_row[row] = position
        count = len(table)
        if count == 0:
            raise NoDocuments("the input holds no documents; no index was written")
        if vectors is not None and len(vectors) != sum(tally.outcomes.values()):
            raise InputError("vectors", None, f"{len(vectors)} vectors for "
                                              f"{sum(tally.outcomes.values())} documents")
        report = tally.report(table, started)
        table.finish_staging()
        reuse = Reuse.gather(folder, table, embedding.model, embedding.quantized) \
            if vectors is None else None
        try:
            writer = _first_segment(generation, table, count, embedding, position_of_row, reuse,
                                    bm25.Tokenizer(lexical), progress)
        finally:
            if reuse is not None:
                reuse.close()
        if reuse is not None:
            report = replace(report, reused=reuse.resumed, unchanged=reuse.unchanged,
                             damaged=reuse.damaged)
        dimension = writer.dimension
        segment = writer.finish(progress)
        kind = vector.choose_kind(count) if index_type == "auto" else index_type
        if query_vectors is not None:
            table.keep_probes(query_vectors)
        store = SegmentSet([Segment(segment, FolderFiles(generation.segments_path / segment.name))])
        ann = train_vector_index(generation.segments_path, "ann-000002", kind, store,
                                 (segment,), table, target_recall, query_vectors,
                                 probe_embedder, progress)
        commit = Commit(number=1, segments=(segment,), ann=ann, index_type=kind,
                        target_recall=target_recall, lexical=lexical.to_dict(), count=count,
                        next_row=segment.last_row + 1, next_name=3)
        generation.commit(Manifest(model=embedding.model, dimension=dimension,
                                   quantized=embedding.quantized), commit)
    return replace(report, seconds=time.perf_counter() - started)


def _first_segment(generation, table: DocumentTable, count: int, embedding: Embedding,
                   position_of_row: np.ndarray, reuse: Reuse | None,
                   tokenizer: bm25.Tokenizer, progress: Progress) -> SegmentWriter:
    """A build's papers in row order, with their vectors (given, taken from the live index or
    an interrupted build, or embedded now), written to its segment; made durable every
    CHECKPOINT_ROWS papers, each stretch with its checksum, for a build started again after
    this one is interrupted."""
    vectors = embedding.given
    writer, done, checkpoint = None, 0, CHECKPOINT_ROWS
    blocks: list[tuple[int, str]] = []
    for batch in table.batches(EMBED_BATCH if vectors is not None else embedding.batch):
        rows = np.array([row for row, _ in batch], dtype=np.int64)
        texts = [document.text for _, document in batch]
        if vectors is not None:
            matrix = vector.normalised(vectors[position_of_row[rows]])
            if done % (64 * EMBED_BATCH) == 0:
                _fs.evict(vectors)  # a memory map read once: no need to keep it mapped
        else:
            matrix = _embedded(rows, texts, embedding, reuse)
        if writer is None:
            writer = SegmentWriter(generation.segments_path, "seg-000001", count,
                                   matrix.shape[1], tokenizer)
        writer.append(rows, matrix, texts)
        done += len(batch)
        progress("embedding", done, count)
        if vectors is None and done >= checkpoint:  # a kill from here on loses no more
            writer.sync()
            start = blocks[-1][0] if blocks else 0
            blocks.append((done, block_digest(writer.path, start, done)))
            generation.record_embedded(writer.name, done, embedding.model, embedding.quantized,
                                       blocks)
            checkpoint += CHECKPOINT_ROWS
    return writer


def _embedded(rows: np.ndarray, texts: list[str], embedding: Embedding,
              reuse: Reuse | None) -> np.ndarray:
    """The vectors of a batch: taken where the live index or an interrupted build holds the
    same text by the same model, embedded by the model otherwise."""
    if reuse is None:
        return embedding.embed(texts)
    matrix, taken = reuse.take(rows)
    if taken.all():
        return matrix
    fresh = embedding.embed([text for text, done in zip(texts, taken) if not done])
    if matrix is None:
        return fresh
    matrix[~taken] = fresh
    return matrix


def dry_run(documents: Iterable[Document], progress: Progress | None = None) -> BuildReport:
    """Read, validate and deduplicate as a build would, writing no index and embedding
    nothing: to check a large input, and how fast it parses."""
    started = time.perf_counter()
    tally = _Tally()
    with scratch_table() as table:
        for _ in _staged(table, documents, progress, tally):
            pass
        return tally.report(table, started)


def train_vector_index(segments_path, name: str, kind: str, store: SegmentSet,
                       segments: tuple[SegmentInfo, ...], table: DocumentTable,
                       target_recall: float, query_vectors: np.ndarray | None,
                       probe_embedder: ProbeEmbedder | None, progress: Progress):
    """A trained vector index over the segments' rows, tuned and saved under ``name``; None
    for the exact kind (no index: every segment is searched exactly)."""
    if kind == "exact":
        return None
    progress("probes", 0, 1)
    probes, probe_kind = _probes(table, store.dimension, query_vectors, probe_embedder)
    progress("probes", 1, 1)
    rows = np.concatenate([s.rows for s in store]) if len(store) > 1 else store.segments[0].rows
    vectors = np.concatenate([s.vectors for s in store]) if len(store) > 1 \
        else store.segments[0].vectors
    index = vector.trained_type(kind).build(rows, vectors, progress)
    tuning = vector.tune(index, store, rows, vectors, probes, target_recall, probe_kind,
                         progress)
    (segments_path / name).mkdir()
    index.save(segments_path / name)
    return segment_files.describe_ann(segments_path, name, kind, tuple(s.name for s in segments),
                                      len(index), dataclasses.asdict(tuning), progress)


def _probes(table: DocumentTable, dimension: int, given: np.ndarray | None,
            embed: ProbeEmbedder | None) -> tuple[np.ndarray | None, str]:
    """Query vectors to tune a trained index on: the ones given, else short fragments of
    sampled titles (3 to 8 words, as people type) embedded as queries by the index's model;
    none where there is no model to embed them (vectors of your own without it)."""
    if given is not None:
        return vector.normalised(np.asarray(given, dtype=np.float32)), "given"
    if embed is None:
        return None, ""
    rng = np.random.default_rng(0)
    rows = table.random_rows(2 * vector.PROBES, rng)
    texts = [text for document in table.by_rows(rows).values()
             if (text := _fragment(document, rng))]
    probes = embed(texts)
    if probes is None or probes.shape[-1] != dimension:
        return None, ""
    return probes, "titles"


def _fragment(document: Document, rng: np.random.Generator) -> str:
    """A run of 3 to 8 words of a paper's title (or of its abstract, if it has none)."""
    words = (document.title or document.abstract).split()
    if len(words) <= 3:
        return " ".join(words)
    length = int(rng.integers(3, min(8, len(words)) + 1))
    start = int(rng.integers(0, len(words) - length + 1))
    return " ".join(words[start:start + length])


# -- updates -------------------------------------------------------------------------------

def update(folder: IndexFolder, documents: Iterable[Document], remove_ids: list[str],
           embedding_for: Callable[[Manifest], Embedding], progress: Progress | None = None,
           documents_given: bool = False) -> UpdateReport:
    """Add documents (or update them by id) and remove ids, in one commit; then merge if the
    policy asks. Writes only the change: one new segment, and tombstones."""
    started = time.perf_counter()
    progress = progress or no_progress
    outcomes: Counter[str] = Counter()
    repeated: list[str] = []
    with folder.writing() as writer:
        base, table = writer.base, writer.documents
        embedding = embedding_for(writer.manifest)
        next_row = base.next_row
        fresh: dict[int, Document] = {}   # rows to embed
        dropped: list[int] = []            # rows to take out (tombstones)
        for position, document in enumerate(documents):
            outcome, old_row = table.upsert(document, next_row)
            outcomes[outcome] += 1
            if outcome in ("new", "updated"):
                fresh[next_row] = document
                next_row += 1
            if old_row in fresh:  # the same id twice in this update: the last one wins
                del fresh[old_row]
                outcomes[outcome] -= 1  # counted once, as its first version
                repeated.append(document.id)
            elif old_row is not None:
                dropped.append(old_row)
            if position % 1000 == 0:
                progress("reading", position + 1, None)
        if documents_given and not sum(outcomes.values()):
            raise NoDocuments("the input holds no documents; nothing was changed")
        unknown, removed = [], 0
        for doc_id in remove_ids:
            row = table.delete(doc_id)
            if row is None:
                unknown.append(doc_id)
            elif row in fresh:
                del fresh[row]
            else:
                dropped.append(row)
                removed += 1
        if unknown:
            raise QueryError(f"no paper with id {', '.join(map(repr, unknown[:5]))}"
                             f"{' and more' if len(unknown) > 5 else ''} in "
                             f"{folder.path}; nothing was removed")
        count = base.count + outcomes["new"] - removed
        report = UpdateReport(
            read=sum(outcomes[o] for o in ("new", "updated", "unchanged", "duplicate"))
            + len(repeated), new=outcomes["new"], updated=outcomes["updated"],
            unchanged=outcomes["unchanged"], duplicates=outcomes["duplicate"],
            removed=removed, repeated=len(repeated), repeated_ids=tuple(repeated[:5]),
            count=count, seconds=0.0,
            without_abstract=sum(not document.abstract for document in fresh.values()))
        if count == 0:
            raise InputError(str(folder.path), None,
                             "this would leave the index empty; nothing was changed "
                             "(delete the folder to drop the whole index)")
        if not table.modified:  # nothing new: no commit either
            return replace(report, seconds=time.perf_counter() - started)
        segments = base.segments
        pending = PendingVectors(writer.pending_path, embedding.model, embedding.quantized)
        reused = 0
        if fresh:
            segment, reused = _write_segment(writer, sorted(fresh.items()), embedding,
                                             bm25.settings_from(base.lexical), pending, progress)
            segments += (segment,)
        table.bury(dropped)
        changed = {"added": base.changed_since_build["added"] + len(fresh),
                   "removed": base.changed_since_build["removed"] + len(dropped)}
        writer.commit(replace(base, segments=segments, count=count, next_row=next_row,
                              changed_since_build=changed))
        pending.discard()
        report = replace(report, reused=reused)
    try:
        merge = merge_if_needed(folder, progress)
    except StoreError as error:  # the write itself is committed: a merge is housekeeping
        merge = f"not done: {error}"
    return replace(report, merge=merge, seconds=time.perf_counter() - started)


def _write_segment(writer, papers: list[tuple[int, Document]], embedding: Embedding,
                   settings: bm25.LexicalSettings, pending: PendingVectors,
                   progress: Progress) -> tuple[SegmentInfo, int]:
    """A new segment of the given (row, paper) pairs, rows ascending, and how many of their
    vectors were taken from ``pending`` (an interrupted add's) rather than embedded now.
    What is embedded is kept in ``pending`` every CHECKPOINT_ROWS papers, and when the write
    is interrupted, so that the same add run again takes it."""
    known = pending.load()
    segment, done, reused = None, 0, 0
    try:
        for start in range(0, len(papers), embedding.batch):
            batch = papers[start:start + embedding.batch]
            texts = [document.text for _, document in batch]
            keys = [text_key(text) for text in texts]
            missing = [i for i, key in enumerate(keys) if key not in known]
            fresh = embedding.embed([texts[i] for i in missing]) if missing else None
            if fresh is not None:
                pending.add([keys[i] for i in missing], fresh)
            dimension = fresh.shape[1] if fresh is not None else len(known[keys[0]])
            matrix = np.empty((len(batch), dimension), dtype=np.float32)
            if fresh is not None:
                matrix[missing] = fresh
            for i, key in enumerate(keys):
                if key in known:
                    matrix[i] = known[key]
            reused += len(batch) - len(missing)
            if segment is None:
                segment = SegmentWriter(writer.segments_path, writer.new_name("seg"),
                                        len(papers), dimension, bm25.Tokenizer(settings))
            segment.append(np.array([row for row, _ in batch], dtype=np.int64), matrix, texts)
            done += len(batch)
            progress("embedding", done, len(papers))
            if pending.unsaved >= CHECKPOINT_ROWS:
                pending.save()
    except BaseException:
        _keep_quietly(pending)  # what was embedded before the interruption is kept
        raise
    return segment.finish(), reused


def _keep_quietly(pending: PendingVectors) -> None:
    """Save what an interrupted add embedded, if the disk lets us; a failure to is no worse
    than the interruption itself."""
    try:
        pending.save()
    except (OSError, ValueError):
        pass


# -- merging -------------------------------------------------------------------------------

def merge_if_needed(folder: IndexFolder, progress: Progress | None = None) -> str:
    """Carry out what the merge policy asks of the live state, in a commit of its own; what
    was done ("folded", "merged", or "")."""
    plan = None
    with folder.writing() as writer:
        plan = segment_files.plan(writer.base)
        if plan is None:
            return ""
        _merge(writer, plan, progress or no_progress)
    return "folded" if plan.fold else "merged"


def _merge(writer, plan: segment_files.MergePlan, progress: Progress) -> None:
    """Merge the planned segments into one without their deleted rows, and fold it into the
    trained vector index if planned. The inputs are checked whole first: a merge never copies
    damage into a new segment."""
    base = writer.base
    progress("merging", 0, None)
    snapshot = writer.pin_base()
    try:
        inputs = [s for s in base.segments if s.name in plan.merge]
        _check_whole(writer, inputs + ([base.ann] if plan.fold and base.ann else []))
        store = SegmentSet([Segment(info, snapshot.part(info.name)) for info in inputs])
        merged, dropped = _merged_segment(writer, store, snapshot.tombstones, base, progress)
        segments = tuple(s for s in base.segments if s.name not in plan.merge) + (merged,)
        ann = base.ann
        if plan.fold and ann is not None:
            progress("folding", 0, 1)
            index = vector.trained_type(ann.kind).load(snapshot.part(ann.name), for_update=True)
            fresh = Segment(merged, FolderFiles(writer.segments_path / merged.name))
            index.add(fresh.rows, fresh.vectors)
            name = writer.new_name("ann")
            (writer.segments_path / name).mkdir()
            index.save(writer.segments_path / name)
            ann = segment_files.describe_ann(writer.segments_path, name, ann.kind,
                                             ann.covers + (merged.name,), len(index), ann.tuning)
            progress("folding", 1, 1)
        writer.documents.exhume(dropped)
        writer.commit(replace(base, segments=segments, ann=ann))
    finally:
        snapshot.close()


def _merged_segment(writer, store: SegmentSet, tombstones: np.ndarray, base: Commit,
                    progress: Progress) -> tuple[SegmentInfo, np.ndarray]:
    """One segment with the live rows of ``store``'s segments, postings merged from theirs
    (nothing is tokenized again); and the rows left out."""
    from semsearch.store.folder import tombstone_mask

    name = writer.new_name("seg")
    path = writer.segments_path / name
    path.mkdir()
    rows, vectors, lengths, entries, dropped = [], [], [], [], []
    offset = 0
    for segment in store:
        dead = tombstone_mask(segment.rows, tombstones)
        keep = np.ones(segment.info.count, bool) if dead is None else ~dead
        if dead is not None:
            dropped.append(segment.rows[dead])
        new_position = np.full(segment.info.count, -1, dtype=np.int64)
        new_position[keep] = offset + np.arange(int(keep.sum()))
        offset += int(keep.sum())
        rows.append(np.asarray(segment.rows)[keep])
        vectors.append(np.asarray(segment.vectors)[keep])
        lengths.append(np.asarray(segment.postings.lengths)[keep])
        entries.append(bm25.remapped_entries(segment.postings, new_position))
        progress("merging", offset, None)
    all_rows = np.concatenate(rows)
    np.save(path / segment_files.ROWS, all_rows)
    np.save(path / segment_files.VECTORS, np.concatenate(vectors).astype(np.float32))
    all_lengths = np.concatenate(lengths).astype(np.int32)
    bm25.write_entries(path, np.concatenate(entries), all_lengths)
    info = segment_files.described(path, name, all_rows, int(all_lengths.sum()))
    return info, (np.concatenate(dropped) if dropped else np.zeros(0, np.int64))


def _check_whole(writer, parts) -> None:
    """Every file of these segments and vector index, against its checksum."""
    files = {}
    for part in parts:
        files.update({f"segments/{part.name}/{n}": c for n, c in part.files.items()})
    if problems := damaged_files(writer.generation, files):
        raise StoreError(f"{problems[0]}: the file is damaged, so nothing was merged; run "
                         f"`semsearch verify`, then `semsearch reindex` or rebuild the index")


# -- re-training ---------------------------------------------------------------------------

def reindex(folder: IndexFolder, index_type: str | None, target_recall: float,
            lexical: bm25.LexicalSettings | None, probe_embedder: ProbeEmbedder | None,
            progress: Progress | None = None) -> BuildReport:
    """Everything live in one new segment, a vector index trained and tuned on it, the
    tombstones gone: from the stored vectors and texts, nothing embedded again. Under the
    writer lock, so no write lands between what it reads and what it commits."""
    started = time.perf_counter()
    progress = progress or no_progress
    with folder.writing() as writer:
        base = writer.base
        snapshot = writer.pin_base()
        try:
            _check_whole(writer, list(base.segments))
            settings = lexical or bm25.settings_from(base.lexical)
            store = SegmentSet([Segment(info, snapshot.part(info.name))
                                for info in base.segments])
            live = writer.documents.live_rows()
            kind = index_type or base.index_type
            if kind == "auto":
                kind = vector.choose_kind(len(live))
            vector.check_kind(kind)
            name = writer.new_name("seg")
            segment = SegmentWriter(writer.segments_path, name, len(live), store.dimension,
                                    bm25.Tokenizer(settings))
            for start in range(0, len(live), 10_000):
                rows = live[start:start + 10_000]
                found = writer.documents.by_rows(rows)
                segment.append(rows, store.vectors(rows), [found[int(r)].text for r in rows])
                store.evict()
                progress("reading", start + len(rows), len(live))
            info = segment.finish(progress)
            fresh = SegmentSet([Segment(info, FolderFiles(writer.segments_path / name))])
            ann = train_vector_index(writer.segments_path, writer.new_name("ann"), kind, fresh,
                                     (info,), writer.documents, target_recall,
                                     writer.documents.kept_probes(), probe_embedder, progress)
            writer.documents.clear_tombstones()
            writer.commit(replace(base, segments=(info,), ann=ann, index_type=kind,
                                  target_recall=target_recall, lexical=settings.to_dict(),
                                  changed_since_build={"added": 0, "removed": 0}))
        finally:
            snapshot.close()
    return BuildReport(read=len(live), duplicates=0, replaced=0, indexed=len(live),
                       seconds=time.perf_counter() - started)


# -- staging -------------------------------------------------------------------------------

@dataclass
class _Tally:
    """What staging did to each document read, for the BuildReport."""

    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    repeated: list[str] = dataclasses.field(default_factory=list)  # the first few

    def record(self, outcome: str, document: Document) -> None:
        self.outcomes[outcome] += 1
        if outcome == "replaced" and len(self.repeated) < 5:
            self.repeated.append(document.id)

    def report(self, table: DocumentTable, started: float) -> BuildReport:
        return BuildReport(read=sum(self.outcomes.values()),
                           duplicates=self.outcomes["duplicate"],
                           replaced=self.outcomes["replaced"], indexed=len(table),
                           seconds=time.perf_counter() - started,
                           repeated_ids=tuple(self.repeated),
                           without_abstract=table.count_without_abstract())


def _staged(table: DocumentTable, documents: Iterable[Document], progress: Progress | None,
            tally: _Tally) -> Iterator[tuple[int, str, int]]:
    """(position, outcome, row) for each document, under the duplicate rules, tallied."""
    for position, document in enumerate(documents):
        outcome, row = table.stage(document)
        tally.record(outcome, document)
        if progress is not None and position % 1000 == 0:
            progress("reading", position + 1, None)
        yield position, outcome, row
