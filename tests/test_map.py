"""The map of a collection (semsearch.overview): regions that follow topics, labelled by their
words; a map that stays put when papers are added and leaves out papers removed; a refit
that says so; the map part checksummed and safe from a kill; the command's page and
picture."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Engine
from semsearch.cli import main
from semsearch.documents import Document
from semsearch.errors import QueryError, StoreError

from conftest import HashingEmbedder, worker_process

TOPICS = {
    "graphs": "graph neural networks message passing nodes edges adjacency",
    "proteins": "protein folding structure prediction residues amino acids",
    "speech": "speech recognition acoustic audio transcription phonemes",
    "vision": "image classification convolutional pixels segmentation",
}


def papers(count: int, start: int = 0) -> list[Document]:
    rng = random.Random(start)
    found = []
    for i in range(start, start + count):
        topic = list(TOPICS)[i % len(TOPICS)]
        words = TOPICS[topic].split()
        found.append(Document(f"{topic}-{i}", f"On {' '.join(rng.sample(words, 3))} {i}",
                              f"We study {' '.join(rng.sample(words, 5))} in case {i}."))
    return found


@pytest.fixture
def engine(tmp_path) -> Engine:
    engine = Engine(tmp_path / "index", embedder=HashingEmbedder())
    engine.build(papers(120))
    return engine


def topic_of(doc_id: str) -> str:
    return doc_id.rsplit("-", 1)[0]


def test_regions_follow_the_topics_and_are_labelled_by_their_words(engine):
    from sklearn.metrics import adjusted_mutual_info_score

    found = engine.map()
    assert len(found.points) == 120 and found.placed_since == 0
    labels = [topic_of(point.id) for point in found.points]
    assert adjusted_mutual_info_score(labels, found.point_regions) > 0.7
    for region in found.regions:
        members = [topic_of(p.id) for p in found.points if p.region == region.number]
        topic = max(set(members), key=members.count)
        assert set(region.words) & set(TOPICS[topic].split()), (region.words, topic)
        assert topic_of(region.central_id) == topic and region.papers == len(members)


def test_adding_papers_moves_no_one_and_keeps_every_label(engine):
    before = engine.map()
    engine.add(papers(12, start=1000))
    after = engine.map()
    assert after.fitted == before.fitted and after.placed_since == 12
    assert [r.to_json() | {"papers": 0} for r in after.regions] == \
        [r.to_json() | {"papers": 0} for r in before.regions]
    old = {p.id: (p.x, p.y, p.region) for p in before.points}
    assert {p.id: (p.x, p.y, p.region) for p in after.points if p.id in old} == old
    new = [p for p in after.points if p.id not in old]
    assert len(new) == 12
    # a new paper lands in the region of its topic's papers
    majority = {}
    for p in before.points:
        majority.setdefault(topic_of(p.id), []).append(p.region)
    agree = sum(p.region == max(set(majority[topic_of(p.id)]),
                                key=majority[topic_of(p.id)].count) for p in new)
    assert agree >= 10


def test_removed_papers_leave_the_map_and_a_rebuild_refits(engine, tmp_path):
    first = engine.map()
    engine.remove(["graphs-0", "speech-2"])
    assert {"graphs-0", "speech-2"}.isdisjoint(p.id for p in engine.map().points)
    time.sleep(1.1)  # the fit's time is to the second
    runner = CliRunner()
    refit = runner.invoke(main, ["map", "--rebuild", "--index", str(engine.path)])
    assert refit.exit_code == 0, refit.output
    assert refit.stdout.startswith("Fitted a map of 118 papers")
    engine.refresh()
    assert engine.map().fitted != first.fitted and engine.info().map_fitted


def test_reindex_refits_the_map_and_says_so(engine):
    first = engine.map()
    time.sleep(1.1)  # the fit's time is to the second
    done = CliRunner().invoke(main, ["reindex", "--index", str(engine.path)])
    assert done.exit_code == 0 and "The map was fitted again" in done.stdout
    engine.refresh()
    assert engine.map(fit=False).fitted != first.fitted


def test_the_map_part_is_checksummed_and_kept_by_later_writes(engine):
    engine.map()
    engine.add(papers(3, start=2000))
    engine.remove(["graphs-0"])
    part = [p for p in (engine.path / "CURRENT").read_text().split() if p]
    generation = engine.path / part[0]
    folders = sorted((generation / "segments").glob("map-*"))
    assert len(folders) == 1 and engine.verify() == []
    damaged = folders[0] / "places.npy"
    damaged.write_bytes(damaged.read_bytes()[:-8] + b"\0" * 8)
    problems = engine.verify()
    assert problems and "places.npy" in problems[0]
    damaged.write_bytes(b"not an array")  # cut short: one line saying what to do
    engine.close()
    with pytest.raises(StoreError, match="places.npy.*damaged"):
        Engine.open(engine.path, embedder=HashingEmbedder()).map(fit=False)


def test_a_server_does_not_fit_a_map(engine):
    with pytest.raises(QueryError, match="semsearch map"):
        engine.map(fit=False)


def test_the_command_writes_json_a_page_and_a_picture(engine, tmp_path):
    runner = CliRunner()
    done = runner.invoke(main, ["map", "--index", str(engine.path), "--json",
                                "--output", str(tmp_path / "map.html"),
                                "--png", str(tmp_path / "map.png")])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["papers"] == 120 and summary["regions"][0]["label"]
    page = (tmp_path / "map.html").read_text()
    assert "SemsearchMap.standalone" in page and "graphs-0" in page
    assert "src=\"http" not in page and "href=\"http" not in page  # nothing fetched
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = runner.invoke(main, ["map", "--index", str(engine.path)])
    assert shown.stdout.startswith("The map of 120 papers (fitted")
    bad = runner.invoke(main, ["map", "--index", str(engine.path),
                               "--png", str(tmp_path / "no" / "such" / "map.png")])
    assert bad.exit_code == 1 and "cannot write the map's picture" in bad.output


KILLED_FITTER = """
import sys
sys.path.insert(0, {tests!r})
from conftest import HashingEmbedder
from semsearch import Engine
engine = Engine.open({index!r}, embedder=HashingEmbedder())
print("ready", flush=True)
while True:
    engine.map(rebuild=True)
    print("fitted", flush=True)
"""


def test_a_fit_killed_at_any_moment_leaves_the_index_whole(engine, tmp_path):
    from pathlib import Path

    engine.map()
    engine.close()
    code = KILLED_FITTER.format(tests=str(Path(__file__).parent), index=str(engine.path))
    rng = random.Random(7)
    for _ in range(4):
        fitter = worker_process([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                text=True)
        assert fitter.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 2.5))
        fitter.send_signal(signal.SIGKILL)
        fitter.wait(timeout=30)
        reopened = Engine.open(engine.path, embedder=HashingEmbedder())
        assert reopened.verify() == []
        assert len(reopened.map(fit=False).points) == 120
        reopened.close()
