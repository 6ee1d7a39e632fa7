"""The paths by which an index or a paper could be lost, outside kill -9 (tests/test_crash.py):
an interrupt or an I/O error at the commit, a broken folder that refuses recovery, damage
copied forward by a write, a rebuild that undoes a concurrent write, a user's folders
deleted, and readers left holding a generation that was deleted under them.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Engine
from semsearch.cli import main
from semsearch.documents import Document
from semsearch.errors import InterruptedAfterCommit, StoreError

from conftest import HashingEmbedder, write

DOCS = [Document(f"p{i}", f"Paper {i} on topic{i % 7}", f"About subject{i % 5} and method{i}.")
        for i in range(40)]
NEW = [Document("n1", "A new paper on topic3", "New words about subject2.")]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def build(path, docs=DOCS, kind="exact"):
    Engine(path, embedder=HashingEmbedder()).build(docs, index_type=kind)
    return path


def ids(path) -> set[str]:
    with Engine.open(path, embedder=HashingEmbedder()) as engine:
        return set(engine.ids())


def live_generation(path: Path) -> Path:
    return path / (path / "CURRENT").read_text().strip()


# -- 1. an interrupt or an error right after the commit -------------------------------------

@pytest.mark.parametrize("fault", [KeyboardInterrupt, OSError])
def test_a_fault_right_after_a_write_commits_keeps_the_write(tmp_path, monkeypatch, fault):
    """The commit of an add is its SQLite transaction; whatever fails after it (folding the
    log into the database, recording stamps, cleaning up) the write stays, whole."""
    from semsearch.store.documents import DocumentTable

    path = build(tmp_path / "idx")

    def failing(self):
        raise fault(5, "I/O error") if fault is OSError else fault()

    monkeypatch.setattr(DocumentTable, "checkpoint", failing)
    engine = Engine.open(path, embedder=HashingEmbedder())
    # an interruption after the commit says the write was saved
    with pytest.raises(InterruptedAfterCommit if fault is KeyboardInterrupt
                       else (OSError, StoreError)):
        engine.add(NEW)
    monkeypatch.undo()
    assert ids(path) == {d.id for d in DOCS} | {"n1"}
    with Engine.open(path, embedder=HashingEmbedder()) as fresh:
        assert fresh.verify() == []
        assert "n1" in {hit.id for hit in fresh.search("new words subject2", k=3)}


@pytest.mark.parametrize("fault", [KeyboardInterrupt, OSError])
def test_a_fault_after_a_build_switches_keeps_the_new_index(tmp_path, monkeypatch, fault):
    """A build's commit is the rename of CURRENT: an interrupt or an I/O error while the
    folder is synced after it never deletes the generation CURRENT names."""
    from semsearch import _fs

    for first in (True, False):
        path = tmp_path / f"idx-{first}"
        if not first:
            build(path, DOCS[:5])
        real = _fs.fsync_dir

        def interrupted(folder, path=path, first=first):
            pointer = path / "CURRENT"
            # the directory sync that follows the rename of CURRENT to the new generation
            if Path(folder) == path and pointer.exists() and \
                    (first or pointer.read_text().strip() != "gen-000001"):
                raise fault(5, "I/O error") if fault is OSError else fault()
            real(folder)

        monkeypatch.setattr(_fs, "fsync_dir", interrupted)
        with pytest.raises((InterruptedAfterCommit, StoreError)) as raised:
            build(path)
        if fault is OSError:
            assert "live" in str(raised.value)
        monkeypatch.undo()
        assert live_generation(path).is_dir()
        assert ids(path) == {d.id for d in DOCS}


# -- 2. a broken folder can be recovered or rebuilt ------------------------------------------

def breakages():
    def current_nowhere(path):
        (path / "CURRENT").write_text("gen-000099\n")

    def manifest_missing(path):
        (live_generation(path) / "manifest.json").unlink()

    def manifest_garbage(path):
        (live_generation(path) / "manifest.json").write_bytes(b"\x00garbage{")

    return {"current-nowhere": current_nowhere, "manifest-missing": manifest_missing,
            "manifest-garbage": manifest_garbage}


@pytest.mark.parametrize("breakage", sorted(breakages()))
def test_a_broken_index_says_how_to_recover_and_recover_restores_the_last_good(tmp_path,
                                                                               breakage):
    path = build(tmp_path / "idx")
    build(path, DOCS + NEW)      # a second build: the first generation is kept one build longer
    breakages()[breakage](path)
    result = run("search", "paper", "--index", path)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert f"semsearch recover --index {path}" in result.output
    assert "semsearch index" in result.output
    recovered = run("recover", "--index", path)
    assert recovered.exit_code == 0, recovered.output
    if breakage == "current-nowhere":
        assert ids(path) == {d.id for d in DOCS} | {"n1"}  # the live one was intact
    else:
        assert ids(path) == {d.id for d in DOCS}          # the one before it
    assert run("verify", "--index", path).exit_code == 0


@pytest.mark.parametrize("breakage", sorted(breakages()))
def test_index_rebuilds_over_a_broken_folder(tmp_path, breakage):
    path = build(tmp_path / "idx")
    breakages()[breakage](path)
    source = write(tmp_path / "papers.jsonl",
                   '{"id": "r1", "title": "Rebuilt paper", "abstract": "A rebuilt index."}\n')
    engine = Engine(path, embedder=HashingEmbedder())
    engine.build(__import__("semsearch").read_documents([source]))
    assert ids(path) == {"r1"}


def test_recover_without_any_intact_generation_says_to_rebuild(tmp_path):
    path = build(tmp_path / "idx")
    (live_generation(path) / "manifest.json").unlink()
    result = run("recover", "--index", path)
    assert result.exit_code == 1 and "semsearch index" in result.output


# -- 3. a write never copies damage forward -------------------------------------------------

def live_segment(path: Path, number: int = 1) -> Path:
    return live_generation(path) / "segments" / f"seg-{number:06d}"


def damage_vector(path: Path) -> Path:
    """Zero one stored vector of the first segment, keeping the file's size and mtime."""
    target = live_segment(path) / "vectors.npy"
    return overwrite_keeping_stamp(target, lambda data: data[:-512] + bytes(256) + data[-256:])


def damage_postings(path: Path) -> Path:
    target = live_segment(path) / "freqs.npy"
    return overwrite_keeping_stamp(target, lambda data: data[:-8] + b"\xff" * 8)


def damage_title(path: Path) -> Path:
    """Edit a stored title behind semsearch's back (a SQLite write of its own)."""
    target = live_generation(path) / "documents.sqlite"
    db = sqlite3.connect(target)
    db.execute("UPDATE documents SET title = 'Xaper 3 on topic3' WHERE id = 'p3'")
    db.commit()
    db.close()
    return target


def overwrite_keeping_stamp(target: Path, change) -> Path:
    status = target.stat()
    data = target.read_bytes()
    target.write_bytes(change(data))
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert target.stat().st_size == status.st_size
    return target


@pytest.mark.parametrize("damage", [damage_vector, damage_postings, damage_title])
@pytest.mark.parametrize("write_kind", ["add", "remove"])
def test_a_write_never_makes_damage_look_intact(tmp_path, damage, write_kind):
    """A write copies nothing it does not change: damage elsewhere stays where it is, and
    `verify` still names it after the write (a write that reads a damaged part refuses)."""
    path = build(tmp_path / "idx")
    damaged = damage(path)
    engine = Engine.open(path, embedder=HashingEmbedder())
    try:
        engine.add(NEW) if write_kind == "add" else engine.remove(["p1"])
    except StoreError as error:
        assert damaged.name in str(error)
    problems = Engine(path, embedder=HashingEmbedder()).verify()
    assert any(str(damaged) in problem or "paper 'p3'" in problem for problem in problems)


def test_a_merge_refuses_to_build_on_a_damaged_segment(tmp_path, monkeypatch):
    from semsearch.index import segments

    monkeypatch.setattr(segments, "MERGE_AT_SEGMENTS", 2)
    path = build(tmp_path / "idx")
    engine = Engine(path, embedder=HashingEmbedder())
    engine.add([Document("x1", "Extra paper one", "Extra words one.")])
    damaged = overwrite_keeping_stamp(live_segment(path, 3) / "vectors.npy",
                                      lambda data: data[:-64] + b"\x7f" * 64)
    report = engine.add([Document("x2", "Extra paper two", "Extra words two.")])
    assert report.new == 1 and "damaged" in report.merge and damaged.name in report.merge
    assert ids(path) >= {"x1", "x2"}          # the add itself is kept
    assert any(str(damaged) in p for p in Engine(path, embedder=HashingEmbedder()).verify())


# -- 4. a rebuild never undoes a write it did not see ----------------------------------------

ADD_IN_ANOTHER_PROCESS = """
import sys
sys.path.insert(0, {tests!r})
from conftest import HashingEmbedder
from semsearch import Engine
from semsearch.documents import Document
with Engine.open({path!r}, embedder=HashingEmbedder()) as engine:
    engine.add([Document("other", "Added by another process", "While a reader was open.")])
"""


def add_in_another_process(path: Path) -> None:
    code = ADD_IN_ANOTHER_PROCESS.format(tests=str(Path(__file__).parent), path=str(path))
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_rebuild_keeps_a_write_committed_after_the_engine_opened(tmp_path, kind):
    many = [Document(f"p{i}", f"Paper {i} on topic{i % 7}", f"About subject{i % 5} and method{i}.")
            for i in range(1200)]
    path = build(tmp_path / "idx", many, kind)
    engine = Engine.open(path, embedder=HashingEmbedder())
    engine.search("paper", k=3)                    # pins the generation it opened
    add_in_another_process(path)
    engine.rebuild()
    assert "other" in ids(path)
    assert len(ids(path)) == len(many) + 1


# -- 5. only the store's own folders are ever deleted ----------------------------------------

def test_index_refuses_a_folder_of_the_users_and_deletes_nothing_in_it(tmp_path):
    folder = tmp_path / "mine"
    write(folder / "gen-notes" / "ideas.txt", "keep me")
    write(folder / "paper.pdf", "pdf")
    source = write(tmp_path / "p.jsonl", '{"id": "a", "title": "T", "abstract": "A."}\n')
    result = run("index", source, "--index", folder)
    assert result.exit_code == 1
    assert "not a semsearch index" in result.output and "--force" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["gen-notes", "paper.pdf"]
    forced = run("index", source, "--index", folder, "--force")
    assert forced.exit_code == 0, forced.output
    assert (folder / "gen-notes" / "ideas.txt").read_text() == "keep me"
    assert (folder / "paper.pdf").exists()


def test_writes_delete_only_generations_the_store_made(tmp_path):
    path = build(tmp_path / "idx")
    write(path / "gen-notes" / "ideas.txt", "keep me")
    write(path / "gen-7.bak" / "x", "keep me too")
    for number in range(3):
        with Engine.open(path, embedder=HashingEmbedder()) as engine:
            engine.add([Document(f"x{number}", f"Extra {number}", "Extra words.")])
    assert (path / "gen-notes" / "ideas.txt").read_text() == "keep me"
    assert (path / "gen-7.bak" / "x").exists()
    assert ids(path) >= {"x0", "x1", "x2"}


# -- 6. readers keep their snapshot across writes --------------------------------------------

@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
@pytest.mark.parametrize("warm", [False, True])
def test_a_reader_keeps_answering_from_its_snapshot_across_writes(tmp_path, kind, warm):
    many = [Document(f"p{i}", f"Paper {i} on topic{i % 7}", f"About subject{i % 5} and method{i}.")
            for i in range(1200)]
    path = build(tmp_path / "idx", many, kind)
    reader = Engine.open(path, embedder=HashingEmbedder())
    if warm:
        before = [hit.id for hit in reader.search("subject3 method7", k=5)]
    for _ in range(3):
        add_in_another_process(path)
        with Engine.open(path, embedder=HashingEmbedder()) as writer:
            writer.remove(["other"])
    hits = reader.search("subject3 method7", k=5)
    if warm:
        assert [hit.id for hit in hits] == before
    assert reader.more_like_this("p3", k=2)
    assert reader.get("p5").title == "Paper 5 on topic5"
    assert len(reader.search("paper", k=2000, mode="lexical")) == len(many)
    # it sees the new state once it moves to it
    add_in_another_process(path)
    assert reader.refresh()
    assert "other" in {hit.id for hit in reader.search("added by another process", k=3,
                                                      mode="lexical")}


def test_a_stale_engine_can_still_write(tmp_path):
    path = build(tmp_path / "idx")
    stale = Engine.open(path, embedder=HashingEmbedder())
    stale.search("paper", k=1)
    add_in_another_process(path)
    add_in_another_process(path)   # a second write deletes the generation it opened
    report = stale.add(NEW)
    assert report.new == 1
    assert ids(path) == {d.id for d in DOCS} | {"n1", "other"}
    stale.remove(["n1"])
    assert ids(path) == {d.id for d in DOCS} | {"other"}
    assert np.isfinite(stale.search("paper", k=1)[0].score)
