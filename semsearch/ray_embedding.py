"""Embedding papers on a Ray cluster (``semsearch index --ray``), for collections whose
embedding outgrows one machine.

Reading, deduplication and the index build stay on the driver, as in a local build. What goes
to the cluster is the embedding: the build hands over its papers' texts a window at a time
(``window`` papers, the build's checkpoint unit, so a driver killed mid-run resumes from the
last window written, as a local build does); Ray Data splits the window into batches and maps
them over a pool of actors, each holding the ONNX model, loaded once an actor; the vectors
come back tagged with their position in the window, so their order never depends on which
actor answered first. A worker or actor that dies is restarted by Ray and its batch run again.

Nothing here schedules work: that is Ray Data's ``map_batches`` with an actor pool, the
pattern Ray documents for batch inference.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semsearch import config
from semsearch.embedding import OnnxEmbedder, model_name_for
from semsearch.errors import SemsearchError

#: papers an actor embeds in one call: enough to keep its cores busy, small enough that a
#: batch run again after a failure costs little
ACTOR_BATCH = 256
INSTALL_HINT = "--ray needs Ray: pip install 'semsearch[ray]'"
#: where the actors embed: "auto" takes one GPU an actor where the cluster has GPUs
DEVICES = ("auto", "cpu", "gpu")
#: what Ray's C++ core worker writes to this process's stderr that is not for the user: an
#: actor pool's actors take their constructor's arguments from the object store and restart
#: when they die, by design here, and Ray warns about that combination at error level
CORE_WORKER_NOTES = (b"has constructor arguments in the object store and max_restarts > 0",)


@dataclass(frozen=True)
class RaySettings:
    """Where and how to embed on Ray. ``address``: an existing cluster's ("ray://host:10001"
    or "auto"), or None to start a Ray instance on this machine for the run. ``actors``: how
    many embedding actors (default: as many as the cluster's CPUs allow at ``threads``
    each, or its GPUs). ``device``: one of DEVICES. ``window``: papers handed to the cluster
    at a time."""

    address: str | None = None
    actors: int | None = None
    threads: int = 1
    device: str = "auto"
    window: int = 8192

    def __post_init__(self):
        if self.device not in DEVICES:
            raise SemsearchError(f"unknown Ray device {self.device!r}: one of "
                                 f"{', '.join(DEVICES)}")


class RayEmbedder:
    """The Embedder of a build whose papers are embedded on a Ray cluster; queries (a few
    probe texts in tuning) are embedded here."""

    def __init__(self, model: str | None, quantized: bool, settings: RaySettings):
        try:  # now, not after reading the input for an hour
            found = importlib.util.find_spec("ray") is not None
        except ValueError:  # the module table says it cannot be imported
            found = False
        if not found:
            raise SemsearchError(INSTALL_HINT)
        self._model = model
        self._quantized = quantized
        self.settings = settings
        self._local = OnnxEmbedder(model, quantized=quantized)
        self._started_here = False
        self.preferred_batch = settings.window

    @property
    def model_name(self) -> str:
        return model_name_for(self._model)

    @property
    def dimension(self) -> int:
        return self._local.dimension

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._local.embed_queries(texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """The texts' vectors, in their order, embedded by the cluster's actors."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        ray = self._connected()
        gpu = self._on_gpus(ray)
        # a block a batch: Ray Data hands out blocks, so a window in one block (its default
        # for a small list) would keep every actor but one idle
        blocks = -(-len(texts) // ACTOR_BATCH)
        rows = ray.data.from_items([{"position": i, "text": text}
                                    for i, text in enumerate(texts)],
                                   override_num_blocks=blocks)
        embedded = rows.map_batches(
            _EmbedActor, fn_constructor_kwargs={"model": self._model,
                                                "quantized": self._quantized,
                                                "threads": self.settings.threads,
                                                "gpu": gpu},
            batch_size=ACTOR_BATCH, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(blocks, self._actors(ray, gpu))),
            num_cpus=self.settings.threads, num_gpus=1 if gpu else 0)
        # an actor pool: a dead actor is started again and its batch run again (Ray Data's
        # default for actor pools: tests kill one)
        vectors, seen = None, np.zeros(len(texts), dtype=bool)
        try:
            with _filtered_stderr(CORE_WORKER_NOTES):
                for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                    positions = batch["position"]
                    if vectors is None:
                        vectors = np.empty((len(texts), batch["vector"].shape[1]),
                                           dtype=np.float32)
                    vectors[positions] = batch["vector"]
                    seen[positions] = True
        except Exception as error:  # our own one-line errors, raised in an actor
            cause = _our_error(error)
            if cause is None:
                raise
            raise cause from None
        if vectors is None or not seen.all():
            raise SemsearchError(f"the Ray cluster returned {int(seen.sum())} of "
                                 f"{len(texts)} vectors")
        return vectors

    def close(self) -> None:
        """Stop the Ray instance this embedder started (a cluster it joined stays up)."""
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False

    def _connected(self):
        config.stay_offline()  # before Ray is loaded: no usage statistics
        self._local.prepare()  # the ONNX file this machine's actors load, made once
        local = self.settings.address is None
        with config.local_ray_environment() if local else contextlib.nullcontext():
            import ray
            import ray.data

            if ray.is_initialized():
                return ray
            options = dict(log_to_driver=False, logging_level=logging.WARNING,
                           include_dashboard=False, configure_logging=False)
            # Ray's notes on how it authenticates its own local instance are not for the
            # user's terminal (its errors are)
            logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
            if local:
                ray.init(**options)
                self._started_here = True
            else:
                ray.init(address=self.settings.address, **options)
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False  # the build reports progress itself
            # and Ray Data's notes on each run (also in its session's logs) are not for the
            # user's terminal; its errors are
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        return ray

    def _on_gpus(self, ray) -> bool:
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.settings.device == "gpu" and not gpus:
            raise SemsearchError("--ray-device gpu: the Ray cluster has no GPUs")
        return self.settings.device != "cpu" and gpus > 0

    def _actors(self, ray, gpu: bool) -> int:
        if self.settings.actors:
            return self.settings.actors
        resources = ray.cluster_resources()
        if gpu:
            return max(1, int(resources["GPU"]))
        return max(1, int(resources.get("CPU", 1)) // max(1, self.settings.threads))


class _EmbedActor:
    """One embedding actor: the model loaded once, then batch after batch."""

    def __init__(self, model: str | None, quantized: bool, threads: int, gpu: bool):
        self._embedder = OnnxEmbedder(model, quantized=quantized, threads=threads, gpu=gpu)
        self._embedder.providers()  # a GPU actor without CUDA says so before any batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self._embedder.embed_documents([str(text) for text in batch["text"]])
        return {"position": batch["position"], "vector": vectors}


@contextlib.contextmanager
def _filtered_stderr(dropped: Sequence[bytes]):
    """This process's stderr (fd 2, where Ray's C++ core worker logs, past Python's reach)
    through a filter that drops the lines holding one of ``dropped`` and passes on everything
    else as it comes, Python's own output and progress included."""
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            pending += chunk
            *lines, pending = _split_lines(pending)
            _write_all(terminal, b"".join(line for line in lines
                                          if not any(note in line for note in dropped)))
        if pending and not any(note in pending for note in dropped):
            _write_all(terminal, pending)

    forwarder = threading.Thread(target=forward, name="semsearch-stderr", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # the pipe's last write end closes: the forwarder reads to its end
        forwarder.join(timeout=5)
        os.close(terminal)
        if not forwarder.is_alive():
            os.close(read_end)


def _split_lines(data: bytes) -> list[bytes]:
    """Lines ended by a newline or a carriage return (progress), with what follows the last."""
    return re.split(rb"(?<=[\r\n])", data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _our_error(error: BaseException) -> SemsearchError | None:
    """The SemsearchError an actor raised, found among the exceptions Ray wraps it in (a
    task error's cause, an actor error's arguments, chained exceptions)."""
    pending, seen = [error], set()
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, SemsearchError):
            return SemsearchError(*error.args)
        pending += [error.__cause__, error.__context__, getattr(error, "cause", None),
                    *(argument for argument in error.args
                      if isinstance(argument, BaseException))]
    return None
