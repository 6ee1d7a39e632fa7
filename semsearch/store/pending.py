"""Vectors an add has embedded but not yet committed, kept durably so that an add interrupted
while embedding (Ctrl-C, a kill, a full disk) and run again takes them instead of embedding
those papers a second time.

They are kept in chunks, each a ``.npy`` of vectors and a file of the keys of the texts they
were embedded from (``text_key``), written and fsynced before ``chunks.json`` names them with
their checksums; a chunk whose files do not match is not taken (its papers are embedded
again). Made by one model (fp32 or int8): vectors of another are never taken. The add that
commits deletes them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from semsearch import _fs

INDEX = "chunks.json"


def text_key(text: str) -> str:
    """What a vector is filed under: the exact text the model read."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class PendingVectors:
    """The pending vectors of one index's live generation, for one model."""

    def __init__(self, path: Path, model: str, quantized: bool):
        self.path = path
        self.model = model
        self.quantized = quantized
        self._chunks: list[dict] = []
        self._keys: list[str] = []
        self._vectors: list[np.ndarray] = []
        #: chunks that failed their checksum when loaded (their papers are embedded again)
        self.damaged = 0

    def load(self) -> dict[str, np.ndarray]:
        """key -> vector for every pending vector made by this model and intact."""
        try:
            record = json.loads((self.path / INDEX).read_text())
        except (OSError, ValueError):
            return {}
        if (record.get("model"), record.get("quantized")) != (self.model, self.quantized):
            return {}
        found: dict[str, np.ndarray] = {}
        for chunk in record.get("chunks", []):
            try:
                loaded = self._read(chunk)
            except (OSError, ValueError, KeyError, TypeError):
                loaded = None
            if loaded is None:
                self.damaged += 1
                continue
            self._chunks.append(chunk)
            keys, vectors = loaded
            found.update(zip(keys, vectors))
        return found

    def _read(self, chunk: dict) -> tuple[list[str], np.ndarray] | None:
        vectors_path, keys_path = self.path / chunk["vectors"], self.path / chunk["keys"]
        for path, name in ((vectors_path, "vectors_sha256"), (keys_path, "keys_sha256")):
            if _fs.file_checksum(path)["sha256"] != chunk[name]:
                return None
        keys = keys_path.read_text().split()
        vectors = _fs.load_array(vectors_path)
        return (keys, vectors) if len(keys) == len(vectors) else None

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        """Vectors just embedded, kept in memory until ``save``."""
        self._keys.extend(keys)
        self._vectors.append(np.asarray(vectors, dtype=np.float32))

    @property
    def unsaved(self) -> int:
        return len(self._keys)

    def save(self) -> None:
        """Make the vectors added since the last save durable, as one more chunk."""
        if not self._keys:
            return
        self.path.mkdir(exist_ok=True)
        name = f"chunk-{len(self._chunks) + 1:06d}"
        vectors_path, keys_path = self.path / f"{name}.npy", self.path / f"{name}.keys"
        np.save(vectors_path, np.concatenate(self._vectors))
        keys_path.write_text("\n".join(self._keys) + "\n")
        for path in (vectors_path, keys_path):
            _fs.fsync_file(path)
        self._chunks.append({"vectors": vectors_path.name, "keys": keys_path.name,
                             "vectors_sha256": _fs.file_checksum(vectors_path)["sha256"],
                             "keys_sha256": _fs.file_checksum(keys_path)["sha256"]})
        _fs.write_atomically(self.path / INDEX, json.dumps({
            "model": self.model, "quantized": self.quantized, "chunks": self._chunks}))
        self._keys, self._vectors = [], []

    def discard(self) -> None:
        """Forget every pending vector: the write they were for has committed."""
        shutil.rmtree(self.path, ignore_errors=True)
