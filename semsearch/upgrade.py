"""Converting an index written by an older semsearch (format 1: one whole generation per
write) into this one's, without embedding anything again: the stored vectors and texts are
read, checked against the old manifest's checksums, and written as one segment of a new
generation with a vector index trained and tuned as a build would."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
from pathlib import Path

import numpy as np
import orjson

from semsearch.documents import Document
from semsearch import _fs
from semsearch.errors import StoreError
from semsearch.index import lexical as bm25
from semsearch.index import vector
from semsearch.index.segments import Segment, SegmentSet, SegmentWriter
from semsearch.indexing import (BuildReport, Progress, ProbeEmbedder, no_progress,
                                train_vector_index)
from semsearch.store import FolderFiles, IndexFolder
from semsearch.store.folder import MANIFEST, damaged_files
from semsearch.store.records import Commit, Manifest

BATCH = 10_000


def upgrade(folder: IndexFolder, probe_embedder: ProbeEmbedder | None,
            progress: Progress | None = None) -> BuildReport:
    started = time.perf_counter()
    progress = progress or no_progress
    old = folder.generation()
    try:
        old_manifest = json.loads((old / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise folder.broken(f"{old / MANIFEST}: {error}") from None
    if old_manifest.get("format_version", 1) >= 2:
        raise StoreError(f"{folder.path} is already of the current format; nothing to upgrade")
    if problems := damaged_files(old, old_manifest.get("files", {})):
        raise StoreError(f"{problems[0]}: the file is damaged, so the index cannot be upgraded "
                         f"from it; rebuild it with `semsearch index`")
    rows, vectors = _old_vectors(old / "vectors", old_manifest["index_type"])
    settings = bm25.LexicalSettings(**(old_manifest.get("lexical") or {}))
    database = sqlite3.connect(f"file:{urllib.parse.quote(str(old / 'documents.sqlite'))}"
                               f"?mode=ro&immutable=1", uri=True)
    try:
        with folder.new_generation() as generation:
            table = generation.documents
            segment = SegmentWriter(generation.segments_path, "seg-000001", len(rows),
                                    vectors.shape[1], bm25.Tokenizer(settings))
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                papers = _old_documents(database, chunk)
                for row, document in zip(chunk, papers):
                    table.insert(int(row), document)
                segment.append(chunk, vectors[start:start + BATCH],
                               [document.text for document in papers])
                progress("reading", start + len(chunk), len(rows))
            info = segment.finish()
            kind = old_manifest["index_type"]
            store = SegmentSet([Segment(info, FolderFiles(generation.segments_path / info.name))])
            target = (old_manifest.get("tuning") or {}).get("target_recall") or \
                vector.DEFAULT_TARGET_RECALL
            ann = train_vector_index(generation.segments_path, "ann-000002", kind, store,
                                     (info,), table, target, None, probe_embedder, progress)
            commit = Commit(number=1, segments=(info,), ann=ann, index_type=kind,
                            target_recall=target, lexical=settings.to_dict(), count=len(rows),
                            next_row=int(rows.max(initial=0)) + 1, next_name=3)
            generation.commit(Manifest(model=old_manifest["model"],
                                       dimension=int(vectors.shape[1]),
                                       quantized=bool(old_manifest.get("quantized"))), commit)
    finally:
        database.close()
    return BuildReport(read=len(rows), duplicates=0, replaced=0, indexed=len(rows),
                       seconds=time.perf_counter() - started)


def _old_vectors(folder: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, vectors) in row order, from a format 1 vector index folder."""
    if (folder / "vectors.npy").is_file():
        rows = _fs.load_array(folder / "rows.npy")
        return rows, _fs.load_array(folder / "vectors.npy", mmap_mode="r")
    import faiss

    index = faiss.read_index(str(folder / "index.faiss"))
    ids = faiss.vector_to_array(index.id_map)
    flat = faiss.downcast_index(index.index)
    matrix = flat.reconstruct_n(0, flat.ntotal)
    order = np.argsort(ids)
    return ids[order].astype(np.int64), np.ascontiguousarray(matrix[order], dtype=np.float32)


def _old_documents(database: sqlite3.Connection, rows: np.ndarray) -> list[Document]:
    wanted = [int(row) for row in rows]
    found = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row, doc_id, title, abstract, metadata in database.execute(
                f"SELECT row, id, title, abstract, metadata FROM documents WHERE row IN "
                f"({marks})", chunk):
            found[row] = Document(id=doc_id, title=title, abstract=abstract,
                                  metadata=orjson.loads(metadata))
    missing = [row for row in wanted if row not in found]
    if missing:
        raise StoreError(f"the old index's vectors name rows its document table lacks "
                         f"({missing[:3]}); rebuild it with `semsearch index`")
    return [found[row] for row in wanted]
