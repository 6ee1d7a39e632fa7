"""An IVF index's inverted lists, read from its file when a search first probes them.

A search probes a few dozen of an index's thousands of lists: a one-shot command that read
every list (every paper's codes) spent longer on that than on the rest of its search. The
index file stays FAISS's own; beside it, ``lists.npy`` says where each list lies in it,
written when the index is saved. The index is then opened without its lists (FAISS reads the
file's head with the lists left empty), and a list is copied in as it stands in the file, so
searches find exactly what they find in the index read whole. A process that goes on
searching reads the rest at once (``PROBED_SEARCHES``), as warming up and writing do.

A file FAISS lays out otherwise (another version) gets no ``lists.npy``, and a ``lists.npy``
that does not fit its file is not used: that index is read whole, as before.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semsearch import _fs
from semsearch.errors import StoreError

if TYPE_CHECKING:
    from semsearch.store.folder import PartFiles

LISTS_FILE = "lists.npy"
#: searches that read in only the lists they probe: a one-shot command's few; a process that
#: searches more reads every list then, and its searches no longer look for missing ones
PROBED_SEARCHES = 3
#: how FAISS writes block inverted lists (the kind fast-scan codes use): this tag, then the
#: list count, code size, vectors a block and bytes a block (8 bytes each); then each list's
#: ids and codes, each as a length (8 bytes) and its items
_TAG = b"ilbl"
_HEAD = 4 + 4 * 8


def _block_lists(index):
    import faiss

    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    return lists if isinstance(lists, faiss.BlockInvertedLists) else None


def write_places(index, saved: Path, target: Path) -> bool:
    """Write where each list of ``index`` (just saved to ``saved``) lies in that file, as
    (offset, vectors) rows; whether it was written (not if the file is laid out otherwise)."""
    lists = _block_lists(index)
    if lists is None:
        return False
    sizes = np.array([lists.list_size(number) for number in range(lists.nlist)], np.int64)
    code_bytes = -(-sizes // lists.n_per_block) * lists.block_size
    spans = 16 + 8 * sizes + code_bytes  # each list: ids' length, ids, codes' length, codes
    start = saved.stat().st_size - _HEAD - int(spans.sum())
    with saved.open("rb") as handle:
        handle.seek(max(start, 0))
        if start < 0 or handle.read(4) != _TAG:
            return False
    offsets = start + _HEAD + np.concatenate([[0], np.cumsum(spans)[:-1]])
    np.save(target, np.stack([offsets, sizes], axis=1).astype(np.int64))
    return True


class StoredLists:
    """The lists of one saved index, memory-mapped, and which of them are read in yet."""

    def __init__(self, mapped: np.ndarray, places: np.ndarray, code_bytes: np.ndarray,
                 shown: Path):
        self._mapped = mapped
        self._places = places
        self._code_bytes = code_bytes  # each list's codes, in bytes
        self._shown = shown
        self._read = np.zeros(len(places), dtype=bool)
        self._searches = 0

    @classmethod
    def open(cls, files: PartFiles, index_file: str) -> StoredLists | None:
        """The lists of ``index_file`` if its ``lists.npy`` fits it (every list where the
        lists before it end, the last ending with the file), else None."""
        if not files.has(LISTS_FILE):
            return None
        try:
            places = _fs.load_array(files.path(LISTS_FILE))
        except (OSError, ValueError):  # not an array: of no use, the index is read whole
            return None
        if places.ndim != 2 or places.shape[1] != 2 or not len(places) or \
                places.dtype != np.int64 or (places < 0).any():
            return None
        try:
            mapped = np.memmap(files.path(index_file), dtype=np.uint8, mode="r")
        except (OSError, ValueError):  # an empty file: reading it whole says what is wrong
            return None
        head = int(places[0, 0]) - _HEAD
        if head < 0 or head + _HEAD > len(mapped) or bytes(mapped[head:head + 4]) != _TAG:
            return None
        count, _, per_block, block = struct.unpack("<4Q", bytes(mapped[head + 4:head + _HEAD]))
        if count != len(places) or not per_block:
            return None
        sizes = places[:, 1]
        code_bytes = -(-sizes // per_block) * block
        ends = places[0, 0] + np.cumsum(16 + 8 * sizes + code_bytes)
        if ends[-1] != len(mapped) or (places[1:, 0] != ends[:-1]).any():
            return None
        return cls(mapped, places, code_bytes, files.shown(index_file))

    def index_without_lists(self):
        """The index as saved, its lists empty (the file's head, and an empty length for
        each list's ids and codes)."""
        import faiss

        head = int(self._places[0, 0])
        empty = np.zeros(16 * len(self._places), dtype=np.uint8)
        return faiss.deserialize_index(np.concatenate([self._mapped[:head], empty]))

    @property
    def complete(self) -> bool:
        return bool(self._read.all())

    def read_probed(self, index, queries: np.ndarray, probes: int) -> None:
        """Read in the lists a search of ``queries`` visiting ``probes`` lists each probes
        (every list, after PROBED_SEARCHES searches)."""
        self._searches += 1
        if probes >= len(self._places) or self._searches > PROBED_SEARCHES:
            return self.read_all(index)
        import faiss

        _, probed = faiss.extract_index_ivf(index).quantizer.search(queries, probes)
        self._read_in(index, np.unique(probed[probed >= 0]))

    def read_all(self, index) -> None:
        self._read_in(index, np.arange(len(self._places)))

    def _read_in(self, index, numbers: np.ndarray) -> None:
        import faiss

        lists = None
        for number in numbers[~self._read[numbers]]:
            offset, count = (int(value) for value in self._places[number])
            code_bytes = int(self._code_bytes[number])
            codes_at = offset + 16 + 8 * count
            if _length(self._mapped, offset) != count or \
                    _length(self._mapped, codes_at - 8) != code_bytes:
                raise StoreError(f"{self._shown}: list {number} is not where {LISTS_FILE} "
                                 f"says (damaged; `semsearch verify` checks the index)")
            if count:
                if lists is None:
                    lists = _block_lists(index)
                ids = np.frombuffer(self._mapped, np.int64, count, offset + 8).copy()
                codes = np.ascontiguousarray(self._mapped[codes_at:codes_at + code_bytes])
                lists.add_entries(int(number), count, faiss.swig_ptr(ids),
                                  faiss.swig_ptr(codes))
            self._read[number] = True


def _length(mapped: np.ndarray, at: int) -> int:
    return int(np.frombuffer(mapped, np.uint64, 1, at)[0])
