"""Embedding on Ray, on a local Ray instance: the index a --ray build or add makes is the one
made here, an embedding actor or the driver killed mid-run leaves it exact, and without Ray
installed --ray says how to get it."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Engine, config, read_documents
from semsearch.cli import main
from semsearch.embedding import GPU_HINT, OnnxEmbedder
from semsearch.errors import SemsearchError
from semsearch.ray_embedding import RayEmbedder, RaySettings

from conftest import DATA

CORPUS = DATA / "scifact-first-60.jsonl"
#: copies of the corpus the killing tests embed (each under other ids and titles): enough
#: windows and batches to kill in the middle of, few enough to embed twice in a test
COPIES = 3
#: every how many of those papers a test checks against a local embedding: several in each
#: window and in each actor's batch
CHECKED_EVERY = 3


def cosines(engine: Engine, ids: list[str], reference: np.ndarray) -> np.ndarray:
    return np.sum(engine.vectors(ids) * reference, axis=1)


def test_a_ray_build_is_the_index_a_local_build_makes(tmp_path):
    runner = CliRunner()
    local = runner.invoke(main, ["index", str(CORPUS), "--index", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    # in a process of its own, as a user runs it: what reaches the terminal is semsearch's
    clustered = subprocess.run([sys.executable, "-m", "semsearch.cli", "index", str(CORPUS),
                                "--index", str(tmp_path / "ray"), "--ray", "--ray-actors", "2",
                                "--json"], capture_output=True, text=True, timeout=600)
    assert clustered.returncode == 0, clustered.stderr
    assert json.loads(clustered.stdout.splitlines()[-1])["indexed"] == 60
    assert "core_worker" not in clustered.stderr and " E " not in clustered.stderr, \
        clustered.stderr  # Ray's error-level note about actor restarts, which are by design
    local_engine, ray_engine = Engine.open(tmp_path / "local"), Engine.open(tmp_path / "ray")
    ids = list(local_engine.ids())
    assert list(ray_engine.ids()) == ids and ray_engine.info().count == 60
    assert cosines(ray_engine, ids, local_engine.vectors(ids)).min() > 0.9999
    assert ray_engine.search("cancer cells", k=3)[0].id == local_engine.search("cancer cells",
                                                                             k=3)[0].id


def test_stderr_passes_through_but_for_the_lines_dropped():
    """In a process of its own: its stderr a real fd 2, written by C code and by Python."""
    code = """
import os, sys
from semsearch.ray_embedding import _filtered_stderr
with _filtered_stderr([b"not for the user"]):
    os.write(2, b"[E core] this is not for the user\\nkept 1\\n")
    print("kept 2", file=sys.stderr, flush=True)
    os.write(2, b"50%\\r100%\\rdone")
print("after", file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"kept 1\nkept 2\n50%\r100%\rdoneafter\n"


def test_papers_added_with_ray_get_the_vectors_a_local_add_gives(tmp_path, monkeypatch):
    sent = []
    embed_on_ray = RayEmbedder.embed_documents
    monkeypatch.setattr(RayEmbedder, "embed_documents",
                        lambda self, texts: sent.append(len(texts)) or embed_on_ray(self, texts))
    first = tmp_path / "first-40.jsonl"
    first.write_text("".join(CORPUS.read_text().splitlines(keepends=True)[:40]))
    runner = CliRunner()
    for name in ("local", "ray"):
        built = runner.invoke(main, ["index", str(first), "--index", str(tmp_path / name)])
        assert built.exit_code == 0, built.output
    local = runner.invoke(main, ["add", str(CORPUS), "--index", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    clustered = runner.invoke(main, ["add", str(CORPUS), "--index", str(tmp_path / "ray"),
                                     "--ray", "--ray-actors", "1", "--json"])
    assert clustered.exit_code == 0, clustered.output + str(clustered.exception)
    report = json.loads(clustered.output.splitlines()[-1])
    assert (report["new"], report["unchanged"]) == (20, 40)
    assert sent == [20]  # only the new papers, and through the cluster
    local_engine, ray_engine = Engine.open(tmp_path / "local"), Engine.open(tmp_path / "ray")
    ids = sorted(local_engine.ids())
    assert sorted(ray_engine.ids()) == ids and ray_engine.info().count == 60
    assert cosines(ray_engine, ids, local_engine.vectors(ids)).min() > 0.9999


def _embedding_actors() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"_EmbedActor" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_an_actor_killed_mid_run_leaves_the_index_exact(tmp_path):
    # one window of two actor batches, each several seconds of embedding on one thread: an
    # actor killed a moment after it appears dies holding its batch, which Ray runs again
    papers = [paper for copy in range(COPIES) for paper in _variants(copy)]
    killed: list[float] = []

    def kill_one_actor():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            for actor in _embedding_actors():
                time.sleep(1.5)  # past loading the model, into its first batch
                try:
                    os.kill(actor, signal.SIGKILL)
                except ProcessLookupError:  # gone already: look again
                    continue
                killed.append(time.monotonic())
                break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    engine = Engine(tmp_path / "ray", ray=RaySettings(actors=2, window=len(papers)))
    report = engine.build(papers)
    finished = time.monotonic()
    killer.join(5)
    assert killed and killed[0] < finished, "no embedding actor was killed during the run"
    assert report.indexed == len(papers) == engine.info().count
    ids = list(engine.ids())
    assert sorted(ids) == sorted(p.id for p in papers)
    checked = papers[::CHECKED_EVERY]
    reference = OnnxEmbedder().embed_documents([p.text for p in checked])
    assert cosines(engine, [p.id for p in checked], reference).min() > 0.9999


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
from semsearch import indexing
from semsearch.engine import Engine
from semsearch.ray_embedding import RayEmbedder, RaySettings
from test_ray_embedding import _variants

indexing.CHECKPOINT_ROWS = {window}
embed = RayEmbedder.embed_documents

def logged(self, texts):
    vectors = embed(self, texts)
    with open({log!r}, "a") as log:
        log.write("".join(text.replace("\\n", " ") + "\\n" for text in texts))
    return vectors

RayEmbedder.embed_documents = logged
papers = [paper for copy in range({copies}) for paper in _variants(copy)]
Engine({index!r}, ray=RaySettings(actors=1, window={window})).build(papers)
"""


def test_a_driver_killed_mid_run_resumes_with_the_rest(tmp_path, monkeypatch):
    from semsearch import indexing

    window, log, index = 20, tmp_path / "first.log", tmp_path / "index"
    papers = [paper for copy in range(COPIES) for paper in _variants(copy)]
    code = DRIVER.format(tests=str(Path(__file__).parent), window=window, log=str(log),
                         index=str(index), copies=COPIES)
    driver = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 240
    while _logged(log) < 3 * window and driver.poll() is None:
        assert time.monotonic() < deadline, "the Ray build never got that far"
        time.sleep(0.05)
    driver.kill()  # the driver only: the Ray instance it started must not outlive it
    driver.wait(timeout=60)
    first = _logged(log)
    assert 3 * window <= first < len(papers) and not (index / "CURRENT").exists()

    embedded: list[str] = []
    embed = RayEmbedder.embed_documents

    def logged(self, texts):
        embedded.extend(texts)
        return embed(self, texts)

    monkeypatch.setattr(RayEmbedder, "embed_documents", logged)
    monkeypatch.setattr(indexing, "CHECKPOINT_ROWS", window)
    engine = Engine(index, ray=RaySettings(actors=1, window=window))
    report = engine.build(papers)
    # every window the killed driver wrote was kept: all it got back but, at most, the last,
    # whose vectors the kill may have caught between coming back and being made durable
    assert first - window <= report.reused <= first and report.reused % window == 0
    texts = [paper.text for paper in papers]
    assert embedded == texts[report.reused:]  # and only the rest embedded, each once
    assert engine.info().count == len(papers) and engine.verify() == []
    checked = papers[::CHECKED_EVERY]
    reference = OnnxEmbedder().embed_documents([paper.text for paper in checked])
    assert cosines(engine, [paper.id for paper in checked], reference).min() > 0.9999
    _wait_for_no_actors()  # what the killed driver started went with it


def _logged(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def _wait_for_no_actors(seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while _embedding_actors():
        assert time.monotonic() < deadline, "embedding actors outlived their driver"
        time.sleep(0.5)


def _variants(copy: int):
    from dataclasses import replace

    for paper in read_documents([str(CORPUS)]):
        yield replace(paper, id=f"{paper.id}-{copy}",
                      title=f"{paper.title} (part {copy})") if copy else paper


def test_without_ray_the_flag_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    result = CliRunner().invoke(main, ["index", str(CORPUS), "--index", str(tmp_path / "x"),
                                       "--ray"])
    assert result.exit_code == 1
    assert "pip install 'semsearch[ray]'" in result.output


def test_ray_actors_needs_ray(tmp_path):
    result = CliRunner().invoke(main, ["index", str(CORPUS), "--ray-actors", "2"])
    assert result.exit_code == 2 and "--ray-actors goes with --ray" in result.output


def test_a_path_taken_for_an_address_is_explained(tmp_path):
    result = CliRunner().invoke(main, ["index", "--ray", str(CORPUS)])
    assert result.exit_code == 2 and "put --ray after the PATHs" in result.output


def test_actors_take_a_gpu_each_where_the_cluster_has_gpus(tmp_path):
    """On a local instance that declares a GPU (this machine has none): by default each actor
    asks for one and runs CUDA's provider, which onnxruntime-gpu has and this onnxruntime has
    not, so the build stops with that in one line; --ray-device cpu embeds on CPUs there."""
    papers = list(_variants(0))
    config.stay_offline()
    with config.local_ray_environment():
        import ray

        ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(SemsearchError) as stopped:
            Engine(tmp_path / "gpu", ray=RaySettings(actors=1)).build(papers)
        assert str(stopped.value) == GPU_HINT
        assert not (tmp_path / "gpu" / "CURRENT").exists()
        engine = Engine(tmp_path / "cpu", ray=RaySettings(actors=1, device="cpu"))
        assert engine.build(papers).indexed == len(papers) == engine.info().count
    finally:
        ray.shutdown()


def test_gpu_actors_on_a_cluster_without_gpus_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["index", str(CORPUS), "--index", str(tmp_path / "x"),
                                       "--ray", "--ray-device", "gpu"])
    assert result.exit_code == 1
    assert "--ray-device gpu: the Ray cluster has no GPUs" in result.output
