"""Shared fixtures: the sample corpus, a tiny deterministic embedder, temporary index roots."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

#: the team's shared folder (test collections), beside the checkout as in CI
SHARED = Path(os.environ.get("SEMSEARCH_SHARED") or
              Path(__file__).resolve().parents[1].parent / "shared")
DATA = Path(__file__).resolve().parent / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "eval").is_dir(),
                                  reason=f"{SHARED} (the shared test collections) is not here")


class HashingEmbedder:
    """Bag of hashed words: similar wording gives similar vectors, with no model to load.

    For tests of plumbing only; anything about meaning uses the real bundled model.
    """

    model_name = "test-hashing-embedder"
    dimension = 64

    def __init__(self) -> None:
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension
                matrix[i, bucket] += 1.0
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def sample_paths() -> list[Path]:
    from semsearch.data import sample_paths

    return sample_paths()


@pytest.fixture(autouse=True)
def index_root(tmp_path, monkeypatch) -> Path:
    """Every test gets its own index root, so nothing touches ./indexes."""
    root = tmp_path / "indexes"
    monkeypatch.setenv("SEMSEARCH_INDEX_ROOT", str(root))
    monkeypatch.delenv("SEMSEARCH_INDEX", raising=False)
    return root


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def worker_process(args: Sequence[str], **options) -> subprocess.Popen:
    """A child process a test may interrupt with SIGINT: Ctrl-C's default action restored in
    it (a suite started as a background job of a shell runs with SIGINT ignored, which a child
    inherits, and a worker that ignores the signal would never stop)."""
    return subprocess.Popen(list(args), preexec_fn=_interruptible, **options)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def index_contents(folder: Path) -> dict[str, str]:
    """Every file of an index folder and a hash of its contents, to tell whether anything
    changed: the document database by what it holds (SQLite's log and shared-memory files are
    its working files, not contents), the rest byte for byte; open-check stamps and the lock
    are housekeeping."""
    import sqlite3

    found = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith((".checked", ".lock")) or \
                path.name.endswith(("-wal", "-shm")):
            continue
        if path.name == "documents.sqlite":
            log = path.with_name(path.name + "-wal")
            empty_log = not log.exists() or log.stat().st_size == 0  # then readable on a full disk
            database = sqlite3.connect(f"file:{path}?mode=ro" + "&immutable=1" * empty_log,
                                       uri=True)
            try:
                text = "\n".join(map(repr, database.iterdump()))
            finally:
                database.close()
            found[str(path.relative_to(folder))] = hashlib.sha256(text.encode()).hexdigest()
        else:
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
