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



# -- a rebuild takes the vectors of unchanged papers from the live index ----------------------

def test_a_rebuild_embeds_only_what_is_new_or_changed(tmp_path):
    index, texts = tmp_path / "index", [paper.text for paper in papers()]
    Engine(index, embedder=HashingEmbedder()).build(papers()[:1000])
    embedder = Logging()
    grown = Engine(index, embedder=embedder).build(papers())
    assert grown.unchanged == 1000 and embedder.texts == texts[1000:]

    changed = papers()
    changed[10] = Document("p10", "A new title", "A new abstract.")
    embedder = Logging()
    again = Engine(index, embedder=embedder).build(changed)
    assert again.unchanged == COUNT - 1 and embedder.texts == [changed[10].text]
    engine = Engine.open(index, embedder=HashingEmbedder())
    assert np.allclose(engine.vectors([p.id for p in changed]),
                       HashingEmbedder().embed_documents([p.text for p in changed]), atol=1e-6)
    assert engine.verify() == []


def test_a_rebuild_by_another_model_or_precision_embeds_everything(tmp_path):
    index = tmp_path / "index"
    Engine(index, embedder=HashingEmbedder()).build(papers()[:500])

    class Other(Logging):
        model_name = "another-model"

    for engine in (Engine(index, embedder=Other()), Engine(index, embedder=Logging(),
                                                           quantized=True)):
        report = engine.build(papers()[:500])
        assert report.unchanged == 0 and len(engine._embedder.texts) == 500


def test_index_again_from_the_command_line_says_what_it_took(tmp_path):
    from click.testing import CliRunner

    from semsearch.cli import main

    source = tmp_path / "papers.jsonl"
    source.write_text("".join(
        f'{{"id": "p{i}", "title": "Paper {i}", "abstract": "About topic {i} in depth."}}\n'
        for i in range(30)))
    target = str(tmp_path / "index")
    CliRunner().invoke(main, ["index", str(source), "--index", target], catch_exceptions=False)
    again = CliRunner().invoke(main, ["index", str(source), "--index", target, "--json"],
                               catch_exceptions=False)
    assert '"reused_from_index": 30' in again.output


# -- what a resumed build takes is checked first -------------------------------------------------

def test_vectors_of_an_interrupted_build_that_fail_their_checksum_are_embedded_again(
        tmp_path, monkeypatch):
    from semsearch import indexing

    monkeypatch.setattr(indexing, "CHECKPOINT_ROWS", CHECKPOINT)
    index = tmp_path / "index"
    with pytest.raises(KeyboardInterrupt):
        Engine(index, embedder=Interrupting()).build(papers())   # 1,024 durable: two stretches
    [unfinished] = [p for p in index.iterdir() if p.name.startswith("gen-")]
    vectors = np.load(unfinished / "segments" / "seg-000001" / "vectors.npy", mmap_mode="r+")
    vectors[600:700] = 0          # damage inside the second stretch
    vectors.flush()
    del vectors

    embedder = Logging()
    report = Engine(index, embedder=embedder).build(papers())
    assert (report.reused, report.damaged) == (CHECKPOINT, CHECKPOINT)
    texts = [paper.text for paper in papers()]
    assert embedder.texts == texts[CHECKPOINT:]
    engine = Engine.open(index, embedder=HashingEmbedder())
    assert np.allclose(engine.vectors([p.id for p in papers()]),
                       HashingEmbedder().embed_documents(texts), atol=1e-6)


# -- an interrupted add resumes as a build does ---------------------------------------------------

ADD_WORKER = WORKER.replace("Engine({index!r}, embedder=Logged()).build(papers())",
                            "Engine({index!r}, embedder=Logged()).add(papers())")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_an_add_interrupted_while_embedding_resumes_with_the_rest(tmp_path, how):
    index, log = tmp_path / "index", tmp_path / "first.log"
    Engine(index, embedder=HashingEmbedder()).build(papers()[:100])
    added = [paper.text for paper in papers()[100:]]
    code = ADD_WORKER.format(tests=str(Path(__file__).parent), checkpoint=CHECKPOINT,
                             log=str(log), index=str(index))
    worker = worker_process([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(embedded_lines(log)) < len(added) * 0.6 and worker.poll() is None:
        assert time.monotonic() < deadline, "the add never got that far"
        time.sleep(0.01)
    worker.send_signal(how)
    worker.wait(timeout=60)
    first = embedded_lines(log)
    assert len(first) < len(added)
    assert Engine.open(index, embedder=HashingEmbedder()).info().count == 100  # not committed

    embedder = Logging()
    report = Engine(index, embedder=embedder).add(papers())
    assert len(first) - CHECKPOINT - 256 <= report.reused <= len(first)
    assert first[:report.reused] == added[:report.reused]
    assert embedder.texts == added[report.reused:]  # only the rest, each once
    engine = Engine.open(index, embedder=HashingEmbedder())
    assert engine.info().count == COUNT and engine.verify() == []
    assert np.allclose(engine.vectors([p.id for p in papers()]),
                       HashingEmbedder().embed_documents([p.text for p in papers()]), atol=1e-6)
    assert not list(index.glob("gen-*/pending-add"))  # gone once the add committed
