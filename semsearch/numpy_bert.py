"""A BERT encoder's forward pass in numpy, over the model's own safetensors weights,
memory-mapped: for embedding a query in a one-shot process.

Starting onnxruntime (importing it, then building a session from the 90 MB graph) takes a
one-shot `semsearch search` longer than the whole rest of its query; this reads only the
weights a text touches (the layers, and the embedding rows of its word pieces) and starts at
once. Same arithmetic in fp32, so the same vectors up to rounding: ``load`` returns None for a
model it does not reproduce, and tests hold it to the ONNX model's vectors.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS = "model.safetensors"
_DTYPES = {"F32": np.float32}


@dataclass(frozen=True)
class _Layer:
    query: tuple[np.ndarray, np.ndarray]
    key: tuple[np.ndarray, np.ndarray]
    value: tuple[np.ndarray, np.ndarray]
    attention_out: tuple[np.ndarray, np.ndarray]
    attention_norm: tuple[np.ndarray, np.ndarray]
    intermediate: tuple[np.ndarray, np.ndarray]
    output: tuple[np.ndarray, np.ndarray]
    output_norm: tuple[np.ndarray, np.ndarray]


class NumpyBert:
    """Hidden states of one tokenised text (no padding: each text runs alone)."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict):
        def pair(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            return tensors[prefix + ".weight"], tensors[prefix + ".bias"]

        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._words = tensors["embeddings.word_embeddings.weight"]
        self._positions = tensors["embeddings.position_embeddings.weight"]
        self._types = tensors["embeddings.token_type_embeddings.weight"]
        self._embedding_norm = pair("embeddings.LayerNorm")
        self._layers = [
            _Layer(query=pair(f"{p}.attention.self.query"), key=pair(f"{p}.attention.self.key"),
                   value=pair(f"{p}.attention.self.value"),
                   attention_out=pair(f"{p}.attention.output.dense"),
                   attention_norm=pair(f"{p}.attention.output.LayerNorm"),
                   intermediate=pair(f"{p}.intermediate.dense"), output=pair(f"{p}.output.dense"),
                   output_norm=pair(f"{p}.output.LayerNorm"))
            for p in (f"encoder.layer.{n}" for n in range(int(config["num_hidden_layers"])))]

    @classmethod
    def load(cls, folder: Path) -> NumpyBert | None:
        """The model in ``folder``, or None if it is not a BERT this reproduces (another
        architecture, activation or position scheme, weights not in fp32 safetensors)."""
        try:
            config = json.loads((folder / "config.json").read_text())
            if (config.get("model_type") != "bert" or config.get("hidden_act") != "gelu"
                    or config.get("position_embedding_type", "absolute") != "absolute"):
                return None
            return cls(_safetensors(folder / WEIGHTS), config)
        except (OSError, ValueError, KeyError, struct.error):
            return None

    def hidden_states(self, ids: list[int], type_ids: list[int]) -> np.ndarray:
        """The last layer's states of one text, (tokens, hidden), on one BLAS thread: a text's
        products are too small to share, and a second thread spinning for work would take the
        core that a one-shot search's other half (opening the index, BM25) runs on."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return self._forward(ids, type_ids)

    def _forward(self, ids: list[int], type_ids: list[int]) -> np.ndarray:
        x = (self._words[ids] + self._positions[:len(ids)] + self._types[type_ids])
        x = _layer_norm(x.astype(np.float32), *self._embedding_norm, self._eps)
        tokens, width = x.shape
        size = width // self._heads
        for layer in self._layers:
            def heads(pair):
                return _linear(x, *pair).reshape(tokens, self._heads, size).transpose(1, 0, 2)

            query, key, value = heads(layer.query), heads(layer.key), heads(layer.value)
            scores = query @ key.transpose(0, 2, 1) / np.float32(math.sqrt(size))
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ value).transpose(1, 0, 2).reshape(tokens, width)
            x = _layer_norm(x + _linear(context, *layer.attention_out),
                            *layer.attention_norm, self._eps)
            inner = _gelu(_linear(x, *layer.intermediate))
            x = _layer_norm(x + _linear(inner, *layer.output), *layer.output_norm, self._eps)
        return x


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ weight.T + bias


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(eps)) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with erf by Abramowitz and Stegun 7.1.26 (error below
    1.5e-7, float32's own rounding): numpy has no erf, and scipy costs a one-shot query more
    to import than this whole model takes to run."""
    z = np.abs(x) * np.float32(1 / math.sqrt(2))
    t = np.float32(1) / (np.float32(1) + np.float32(0.3275911) * z)
    poly = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (
        np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * np.float32(1.061405429)))))
    erf = np.float32(1) - poly * np.exp(-z * z)
    return np.float32(0.5) * x * (np.float32(1) + np.copysign(erf, x))


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file, as read-only arrays over a memory map of it (a
    tensor costs nothing until it is read). Only fp32 tensors; the others are left out."""
    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    (length,) = struct.unpack("<Q", mapped[:8])
    header = json.loads(mapped[8:8 + length])
    start = 8 + length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry.get("dtype") not in _DTYPES:
            continue
        first, last = entry["data_offsets"]
        dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(mapped, dtype=dtype, count=(last - first) // dtype.itemsize,
                                      offset=start + first).reshape(entry["shape"])
    return tensors
