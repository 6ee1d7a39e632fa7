"""A build interrupted while it embeds (SIGKILL, Ctrl-C) is resumed by the next build of the
same index: it takes the vectors the interrupted one wrote durably and embeds only the rest,
and every paper ends up in the index exactly once, with its own vector."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import Engine
from semsearch.documents import Document

from conftest import HashingEmbedder, worker_process

COUNT = 3000
CHECKPOINT = 512
WORKER = """
import sys, time
sys.path.insert(0, {tests!r})
from conftest import HashingEmbedder
from semsearch import indexing
from semsearch.engine import Engine
from test_resume import papers

indexing.CHECKPOINT_ROWS = {checkpoint}

class Logged(HashingEmbedder):
    def embed_documents(self, texts):
        with open({log!r}, "a") as log:
            log.write("".join(text + "\\n" for text in texts))
        time.sleep(0.05)
        return super().embed_documents(texts)

Engine({index!r}, embedder=Logged()).build(papers())
print("finished", flush=True)
"""


def papers() -> list[Document]:
    return [Document(f"p{i}", f"Paper {i} about topic{i % 31}", f"Abstract {i} on method{i % 17}.")
            for i in range(COUNT)]


class Logging(HashingEmbedder):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def embed_documents(self, texts):
        self.texts.extend(texts)
        return super().embed_documents(texts)


def embedded_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_build_interrupted_while_embedding_resumes_with_the_rest(tmp_path, how):
    index, log = tmp_path / "index", tmp_path / "first.log"
    code = WORKER.format(tests=str(Path(__file__).parent), checkpoint=CHECKPOINT,
                         log=str(log), index=str(index))
    worker = worker_process([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(embedded_lines(log)) < COUNT * 0.6 and worker.poll() is None:
        assert time.monotonic() < deadline, "the build never got that far"
        time.sleep(0.01)
    worker.send_signal(how)
    worker.wait(timeout=60)
    first = embedded_lines(log)
    assert len(first) < COUNT and not (index / "CURRENT").exists()

    embedder = Logging()
    report = Engine(index, embedder=embedder).build(papers())

    # the interrupted build wrote its vectors durably every CHECKPOINT rows: at most that many,
    # and the batch under way, are embedded twice
    assert len(first) - CHECKPOINT - 256 <= report.reused <= len(first)
    texts = [paper.text for paper in papers()]
    assert first[:report.reused] == texts[:report.reused]
    assert embedder.texts == texts[report.reused:]  # only the rest, each once
    engine = Engine.open(index, embedder=HashingEmbedder())
    assert engine.info().count == COUNT and engine.verify() == []
    ids = [paper.id for paper in papers()]
    assert np.allclose(engine.vectors(ids), HashingEmbedder().embed_documents(texts), atol=1e-6)
    assert [p.name for p in index.iterdir() if p.name.startswith("gen-")] == \
        [engine.info().generation]  # the interrupted build's files are gone


class Interrupting(Logging):
    """Ctrl-C while embedding the batch after ``batches`` of them."""

    def __init__(self, batches: int = 4):
        super().__init__()
        self.batches = batches

    def embed_documents(self, texts):
        if len(self.texts) >= self.batches * 256:
            raise KeyboardInterrupt
        return super().embed_documents(texts)


def test_vectors_of_another_model_are_not_taken(tmp_path, monkeypatch):
    from semsearch import indexing

    monkeypatch.setattr(indexing, "CHECKPOINT_ROWS", CHECKPOINT)

    with pytest.raises(KeyboardInterrupt):
        Engine(tmp_path / "index", embedder=Interrupting()).build(papers())

    class Other(Logging):
        model_name = "another-model"

    embedder = Other()
    report = Engine(tmp_path / "index", embedder=embedder).build(papers())
    assert report.reused == 0 and len(embedder.texts) == COUNT


def test_a_changed_paper_is_embedded_again_and_the_others_are_taken(tmp_path, monkeypatch):
    from semsearch import indexing

    monkeypatch.setattr(indexing, "CHECKPOINT_ROWS", CHECKPOINT)

    with pytest.raises(KeyboardInterrupt):
        Engine(tmp_path / "index", embedder=Interrupting()).build(papers())
    changed = papers()
    changed[10] = Document("p10", "A new title", "A new abstract.")
    embedder = Logging()
    report = Engine(tmp_path / "index", embedder=embedder).build(changed)
    assert report.reused == 4 * 256 - 1  # four batches were written; one paper changed since
    assert changed[10].text in embedder.texts
    assert len(embedder.texts) == COUNT - report.reused

