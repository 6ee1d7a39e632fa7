"""Crash safety: a writer killed with SIGKILL at random moments never leaves a broken index.

After every kill the index must open, pass `verify`, hold exactly the documents of the last
committed operation (the one in flight may or may not have landed, nothing in between), and
answer searches. Runs on every index type.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semsearch import Engine
from semsearch.documents import Document

from conftest import HashingEmbedder
from crash_worker import apply

WORKER = Path(__file__).with_name("crash_worker.py")
KILLS_PER_TYPE = 8


def stored_ids(path: Path) -> set[str]:
    with Engine.open(path, embedder=HashingEmbedder()) as engine:
        return {doc.id for batch in engine.documents.batches(1000) for _, doc in batch}


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_sigkill_during_add_or_remove_leaves_the_last_committed_state(kind, tmp_path):
    path = tmp_path / kind
    docs = [Document(f"d{i}", f"Paper {i} on topic{i % 41}",
                     f"Words about subject{i % 37}, method{i % 13} and result{i}.")
            for i in range(1500)]
    Engine(path, embedder=HashingEmbedder()).build(docs, index_type=kind)
    states = [{doc.id for doc in docs}]      # states[n]: the ids after operation n - 1
    rng = random.Random(kind)
    killed_mid_write = 0
    for kill in range(KILLS_PER_TYPE):
        first = len(states) - 1
        worker = subprocess.Popen([sys.executable, str(WORKER), str(path), str(first)],
                                  stdout=subprocess.PIPE, text=True, cwd=WORKER.parent)
        assert worker.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 1.5))
        worker.send_signal(signal.SIGKILL)
        output = worker.stdout.read().split()
        worker.wait()
        committed = [int(n) for word, n in zip(output[::2], output[1::2]) if word == "committed"]
        for number in committed:
            states.append(apply(number, states[-1]))
        in_flight = apply(len(states) - 1, states[-1])

        # a generation folder without a manifest: the kill landed inside a write
        killed_mid_write += any(not (gen / "manifest.json").exists() for gen in path.glob("gen-*"))
        found = stored_ids(path)
        assert found in (states[-1], in_flight), f"kill {kill}: a mix of two states"
        if found == in_flight:             # committed, killed before it could say so
            states.append(in_flight)
        with Engine.open(path, embedder=HashingEmbedder()) as engine:
            assert engine.verify() == []
            assert engine.info().count == len(states[-1])
            hits = engine.search("subject3 method4", k=10)
            assert len(hits) == 10 and {hit.id for hit in hits} <= states[-1]
    assert len(states) > KILLS_PER_TYPE, "the writer hardly ever got to commit"
    assert killed_mid_write >= KILLS_PER_TYPE // 2, "most kills missed the writes"


SIGINTS = 20


def test_sigint_at_the_commit_never_loses_the_index(tmp_path):
    """Ctrl-C that lands right as CURRENT is switched (watched for, and signalled at once)
    leaves the state before or after that write, never a generation that was deleted."""
    path = tmp_path / "index"
    docs = [Document(f"d{i}", f"Paper {i} on topic{i % 41}", f"Words about subject{i % 37}.")
            for i in range(300)]
    Engine(path, embedder=HashingEmbedder()).build(docs, index_type="exact")
    states = [{doc.id for doc in docs}]
    pointer = path / "CURRENT"
    for attempt in range(SIGINTS):
        first = len(states) - 1
        worker = subprocess.Popen([sys.executable, str(WORKER), str(path), str(first)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  cwd=WORKER.parent)
        assert worker.stdout.readline().strip() == "ready"
        before = pointer.read_bytes()
        deadline = time.monotonic() + 30
        while pointer.read_bytes() == before and time.monotonic() < deadline:
            pass
        worker.send_signal(signal.SIGINT)
        output = worker.stdout.read().split()
        worker.wait()
        committed = [int(n) for word, n in zip(output[::2], output[1::2]) if word == "committed"]
        for number in committed:
            states.append(apply(number, states[-1]))
        in_flight = apply(len(states) - 1, states[-1])
        live = path / pointer.read_text().strip()
        assert live.is_dir(), f"attempt {attempt}: CURRENT names a deleted generation"
        found = stored_ids(path)
        assert found in (states[-1], in_flight), f"attempt {attempt}: a mix of two states"
        if found == in_flight:
            states.append(in_flight)
        with Engine.open(path, embedder=HashingEmbedder()) as engine:
            assert engine.verify() == []
    assert len(states) > SIGINTS // 2
