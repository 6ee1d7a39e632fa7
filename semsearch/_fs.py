"""Durable writes, in one place: every file semsearch commits goes through these.

A file is written under a temporary name, flushed and fsynced, then renamed over its final
name, and the folder is fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any


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


def new_array_file(path: Path, dtype, shape: tuple[int, ...]):
    """A new .npy file mapped for writing, its blocks reserved first: writing into a sparse
    mapping on a full disk kills the process with SIGBUS, a failed reservation is an ENOSPC."""
    import numpy as np

    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    with path.open("r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size:
            os.posix_fallocate(handle.fileno(), 0, size)
    return array


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
