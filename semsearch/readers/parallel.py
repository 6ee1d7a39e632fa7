"""Reading a large JSON-lines file on every core.

The arXiv snapshot is millions of lines, and one core parses, validates and keys about 13,000
of them a second. Here the main process only cuts the file into chunks of lines and takes
back Documents in file order; worker processes parse each line, turn the record into a
Document and compute its duplicate keys (which travel with it). Bad lines come back as
messages with their line numbers, so ``--skip-bad`` and errors behave exactly as when read
on one core. At most a few chunks are in flight, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.documents import Document
from semsearch.errors import InputError
from semsearch.readers.text import bounded_lines, json_record, open_input, too_long

if TYPE_CHECKING:
    from concurrent.futures import Future

    from semsearch.readers import ReadOptions

#: files smaller than this are read on one core: starting the workers costs about a second
PARALLEL_FROM_BYTES = 64 << 20
CHUNK_LINES = 2000

#: record -> Document, or the reason it cannot be one; a module-level function (it is pickled)
Convert = Callable[[dict[str, Any]], "Document | str"]


def worth_parallel(path: Path) -> bool:
    return (os.cpu_count() or 1) > 1 and path.stat().st_size >= PARALLEL_FROM_BYTES


def documents_in_workers(path: Path, convert: Convert, options: ReadOptions,
                         workers: int | None = None) -> Iterator[Document]:
    """The Documents of a JSON-lines file in file order, read by ``workers`` processes."""
    import multiprocessing  # here: every command imports this module, few read in parallel
    from concurrent.futures import ProcessPoolExecutor

    workers = workers or os.cpu_count() or 1
    # "spawn": the caller may run threads (onnxruntime, BLAS), and a forked child could inherit
    # a lock one of them held
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        with open_input(path) as handle:
            chunks = _chunks(handle)
            pending: deque[Future] = deque(
                pool.submit(_convert_chunk, convert, first, lines)
                for first, lines in itertools.islice(chunks, 2 * workers + 1))
            while pending:
                with _collector_paused():
                    results = pickle.loads(pending.popleft().result())
                for first, lines in itertools.islice(chunks, 1):
                    pending.append(pool.submit(_convert_chunk, convert, first, lines))
                yield from _accepted(path, results, options)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def documents_on_one_core(path: Path, convert: Convert, options: ReadOptions) -> Iterator[Document]:
    """The same Documents as ``documents_in_workers``, read in this process."""
    with open_input(path) as handle:
        numbered = ((number, _document_of_line(raw, convert))
                    for number, raw in bounded_lines(handle))
        yield from _accepted(path, numbered, options)


def _accepted(path: Path, numbered: Iterable[tuple[int, Document | str | None]],
              options: ReadOptions) -> Iterator[Document]:
    """The Documents; each reason a line is bad goes to ``options.bad`` with its number."""
    for number, outcome in numbered:
        if isinstance(outcome, str):
            options.bad(InputError(str(path), number, outcome))
        elif outcome is not None:
            yield outcome


def _document_of_line(raw: bytes | None, convert: Convert) -> Document | str | None:
    """One line's Document; None for a blank line; or the reason it cannot be one (None for
    ``raw``: the line was too long to read)."""
    if raw is None:
        return too_long()
    record = json_record(raw)
    if record is None or isinstance(record, str):
        return record
    return convert(record)


def _chunks(handle) -> Iterator[tuple[int, list[bytes | None]]]:
    """(number of the first line, the lines) for consecutive chunks of the file; None for a
    line too long to read."""
    lines = bounded_lines(handle)
    while chunk := list(itertools.islice(lines, CHUNK_LINES)):
        yield chunk[0][0], [raw for _, raw in chunk]


def _convert_chunk(convert: Convert, first: int, lines: list[bytes]) -> bytes:
    """The chunk's [(line number, Document or reason)], pickled here so that the main
    process unpickles them itself, with the collector paused."""
    results = []
    for number, raw in enumerate(lines, start=first):
        outcome = _document_of_line(raw, convert)
        if isinstance(outcome, Document):
            outcome.duplicate_keys  # noqa: B018 (computed here, in the worker; pickled with it)
        if outcome is not None:
            results.append((number, outcome))
    return pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Unpickling thousands of small objects sets off the cyclic garbage collector again and
    again, for nothing (none of them form cycles): 9 us a record with it running, 3.6 without."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
