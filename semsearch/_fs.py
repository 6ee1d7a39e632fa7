"""Durable writes, in one place: every file semsearch commits goes through these; and the
one way .npy files are opened.

A file is written under a temporary name, flushed and fsynced, then renamed over its final
name, and the folder is fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

#: np.load parses an array's header with ast.literal_eval, which CPython 3.11 does not make
#: safe in two threads at once (a SystemError, "AST constructor recursion depth mismatch",
#: seen when a first hybrid search's threads opened BM25 and the vectors together): arrays
#: are opened one at a time, through a memory map, so the lock is held for the header only
_OPENING = threading.Lock()


def load_array(path: Path, mmap_mode: str | None = None):
    """The array in a .npy file, memory-mapped (``mmap_mode``) or read into memory."""
    import numpy as np

    with _OPENING:
        array = np.load(path, mmap_mode=mmap_mode or "r", allow_pickle=False)
    return array if mmap_mode else np.array(array)


def write_atomically(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` all at once: a crash leaves the old file or the new one."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write_synced(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_synced(path: Path, data: str | bytes) -> None:
    """Write a new file and fsync it (no rename: for files whose folder is not live yet)."""
    with path.open("wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())


class ArrayWriter:
    """A new .npy file of a known shape, written front to back by appends.

    Plain writes, not a memory map: what is written does not stay mapped in this process
    (a build's gigabytes of vectors would count in its resident memory until the map is
    dropped). The file's blocks are reserved first, so a full disk fails here, at once, with
    ENOSPC."""

    def __init__(self, path: Path, dtype, shape: tuple[int, ...]):
        import numpy as np

        self.path = path
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape)
        self.rows = 0
        self._handle = path.open("wb")
        try:
            np.lib.format.write_array_header_1_0(self._handle, {
                "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                "shape": self.shape})
            self._handle.flush()
            size = self._handle.tell() + self.dtype.itemsize * int(np.prod(self.shape))
            os.posix_fallocate(self._handle.fileno(), 0, size)
        except BaseException:
            self._handle.close()
            raise

    def append(self, block) -> None:
        import numpy as np

        block = np.ascontiguousarray(block, dtype=self.dtype)
        if self.rows + len(block) > self.shape[0]:
            raise ValueError(f"{self.path.name}: more rows than the {self.shape[0]} planned")
        self._handle.write(memoryview(block).cast("B"))
        self.rows += len(block)

    def sync(self) -> None:
        """Make the rows appended so far durable."""
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Flush and fsync; every planned row must have been written."""
        try:
            if self.rows != self.shape[0]:
                raise ValueError(f"{self.path.name}: {self.rows} rows of {self.shape[0]} written")
            self._handle.flush()
            os.fsync(self._handle.fileno())
        finally:
            self._handle.close()


def evict(array) -> None:
    """Drop a memory-mapped array's pages from this process's resident memory; they stay in
    the page cache, so reading them again costs a minor fault, not a disk read. For long
    passes over files larger than memory (a build, a merge): without it every page read stays
    counted against the process until the map is closed."""
    import mmap

    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "_mmap", None) or getattr(array, "base", None)
    if array is not None and len(array):
        try:
            array.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass  # only memory held longer


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Every file under ``folder``, then every folder, bottom up."""
    folders = [folder]
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            folders.append(path)
        elif path.is_file():
            fsync_file(path)
    for path in reversed(folders):
        fsync_dir(path)


def file_checksum(path: Path) -> dict[str, Any]:
    """{"sha256", "bytes"} of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}
