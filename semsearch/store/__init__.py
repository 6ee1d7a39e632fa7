"""The index on disk: folders and generations (``folder``), the document database
(``documents``), and the records that say what an index holds (``records``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from semsearch.store.documents import DocumentTable
from semsearch.store.folder import (FolderFiles, IndexFolder, PartFiles, Snapshot, Writer,
                                    resolve)
from semsearch.store.records import AnnInfo, Commit, Manifest, SegmentInfo

__all__ = ["AnnInfo", "Commit", "DocumentTable", "FolderFiles", "IndexFolder", "Manifest",
           "PartFiles", "SegmentInfo", "Snapshot", "Writer", "resolve", "scratch_table"]


@contextmanager
def scratch_table() -> Iterator[DocumentTable]:
    """A throwaway document table, for applying the duplicate rules without writing an index."""
    with tempfile.TemporaryDirectory(prefix="semsearch-") as folder:
        table = DocumentTable.create(Path(folder) / "documents.sqlite", keep_text=False)
        try:
            yield table
        finally:
            table.close()
