"""Queries embedded in bfloat16 by OpenVINO, on CPUs that compute bfloat16 natively.

Why: embedding the query is most of a search's time, and in fp32 it is bound by arithmetic
(its cost grows with every word piece). CPUs with AVX512-BF16 or AMX do bf16 products at twice
the fp32 rate; onnxruntime has no such kernel on x86, OpenVINO has. The vectors stay within
cosine 0.9999 of fp32 (checked once per model on this machine, before first use).

OpenVINO pays about 0.75 ms whenever the input shape changes between calls, so each query is
padded to one of a few fixed lengths and run by a model compiled for exactly that shape, on
first need (about 0.25 s each). Each keeps its input tensors bound and is filled in place:
handing OpenVINO numpy arrays at every call, and pooling through a general batch path, cost
another 0.4 ms a query. Each compiled length holds its own copy of the weights (about
50 MB), so there are five, for queries up to 64 word pieces; longer texts are left to fp32.
(OpenVINO's on-disk cache of compiled models would save 0.1 s of each compile for 90 MB of disk
a length; not used.)
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Queries are padded up to the next of these lengths (word pieces). Each step costs a compiled
#: model; each word piece of padding ~0.06 ms. Half of SciFact's claims have 17 to 26.
LENGTHS = (16, 24, 32, 48, 64)
#: The lowest cosine to fp32 accepted on the check texts.
MIN_COSINE = 0.9999
REJECTED = "bf16-rejected"


def bf16_available() -> bool:
    """Whether OpenVINO is installed and this CPU computes bfloat16 natively."""
    return _bf16_core() is not None


def _bf16_core():
    """An OpenVINO Core where this CPU computes bfloat16 natively, else None."""
    try:
        openvino = import_openvino()
    except ImportError:
        return None
    core = openvino.Core()
    return core if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else None


def import_openvino():
    """OpenVINO, imported with its usage telemetry cut off.

    ``import openvino`` loads its model converter, which starts the openvino_telemetry package:
    it forks a process that looks up an analytics host and writes counters under ~/intel, with
    no opt-in. A module set to None in ``sys.modules`` cannot be imported, and OpenVINO then
    falls back to a telemetry stub of its own. (If the process imported openvino_telemetry
    before, that is its own choice and is left alone.)
    """
    sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


class Bf16QueryModel:
    """Hidden states of one text at a time, in bf16, from a graph converted once from ONNX."""

    def __init__(self, folder: Path, max_length: int, threads: int = 0, core=None):
        openvino = import_openvino()

        self._folder = folder
        self._core = core or openvino.Core()
        self._config = {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._graph = None
        self._input_names: list[str] = []
        self._lengths = sorted({min(length, max_length) for length in LENGTHS})
        self._compiled: dict[int, object] = {}

    @classmethod
    def prepare(cls, export: Path, folder: Path, max_length: int,
                check_texts: Sequence[dict[str, np.ndarray]], threads: int = 0
                ) -> Bf16QueryModel | None:
        """The model for ``export`` (converted and checked on first use), or None where bf16
        does not apply: no OpenVINO, no native bf16, or a failed check (remembered)."""
        core = None if (folder / REJECTED).is_file() else _bf16_core()
        if core is None:
            return None
        if (folder / "model.xml").is_file():
            return cls(folder, max_length, threads, core)
        try:
            _convert(export, folder)
            model = cls(folder, max_length, threads, core)
            reason = None if model.matches_fp32(check_texts) else \
                f"bf16 vectors were below cosine {MIN_COSINE} to fp32 on the check texts"
        except Exception as error:  # bf16 is only an optimisation: fp32 still runs
            reason = f"converting or checking failed: {error!r}"
        if reason is None:
            return model
        folder.mkdir(parents=True, exist_ok=True)
        (folder / REJECTED).write_text(reason + "\n")
        for converted in ("model.xml", "model.bin"):
            (folder / converted).unlink(missing_ok=True)
        return None

    @property
    def longest(self) -> int:
        """The most word pieces a text may have to run here."""
        return self._lengths[-1] if self._lengths else 0

    @property
    def compiled_lengths(self) -> list[int]:
        return sorted(self._compiled)

    def pooled(self, ids: Sequence[int], type_ids: Sequence[int]) -> np.ndarray:
        """The mean of one text's last hidden states over its word pieces (at most ``longest``),
        not yet normalised."""
        length = len(ids)
        request, inputs = self._request(next(size for size in self._lengths if size >= length))
        for name, values in (("input_ids", ids), ("attention_mask", 1),
                             ("token_type_ids", type_ids)):
            if name in inputs:
                inputs[name][0, :length] = values
                inputs[name][0, length:] = 0
        request.infer()
        return request.get_output_tensor(0).data[0, :length].mean(axis=0)

    def matches_fp32(self, feeds: Sequence[dict[str, np.ndarray]]) -> bool:
        """Whether every feed's mean-pooled vector is within MIN_COSINE of fp32's."""
        fp32 = self._core.compile_model(self._read(), "CPU",
                                        {**self._config, "INFERENCE_PRECISION_HINT": "f32"})
        request = fp32.create_infer_request()
        names = {port.any_name for port in fp32.inputs}
        for feed in feeds:
            reference = np.asarray(request.infer({k: v for k, v in feed.items() if k in names})[0])
            reference = reference[0].mean(axis=0)
            vector = self.pooled(feed["input_ids"][0], feed["token_type_ids"][0])
            cosine = reference @ vector / (np.linalg.norm(reference) * np.linalg.norm(vector))
            if not cosine >= MIN_COSINE:
                return False
        return True

    def _request(self, length: int):
        """The compiled model for inputs of exactly ``length``, and its inputs to fill."""
        if length not in self._compiled:
            openvino = import_openvino()

            graph = self._read().clone()
            graph.reshape({name: [1, length] for name in self._input_names})
            request = self._core.compile_model(graph, "CPU", self._config).create_infer_request()
            tensors = {name: openvino.Tensor(np.zeros((1, length), dtype=np.int64))
                       for name in self._input_names}
            for name, tensor in tensors.items():
                request.set_tensor(name, tensor)
            self._compiled[length] = (request, {name: t.data for name, t in tensors.items()})
        return self._compiled[length]

    def _read(self):
        if self._graph is None:
            self._graph = self._core.read_model(str(self._folder / "model.xml"))
            self._input_names = [port.any_name for port in self._graph.inputs]
        return self._graph


def _convert(export: Path, folder: Path) -> None:
    """Convert the ONNX export to OpenVINO's format (read 6x faster), written atomically."""
    openvino = import_openvino()

    temporary = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        # Weights stay fp32 on disk: bf16 happens at compile time, from the exact values.
        openvino.save_model(openvino.Core().read_model(str(export)),
                            str(temporary / "model.xml"), compress_to_fp16=False)
    except Exception:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    try:
        temporary.rename(folder)
    except OSError:  # another process converted it first
        shutil.rmtree(temporary, ignore_errors=True)
        if not (folder / "model.xml").is_file():
            raise

