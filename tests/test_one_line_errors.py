"""Faults of the disk, the file system and the input that must end in one line on stderr, a
non-zero exit and an index exactly as it was: never a traceback, never a half-written copy.

Run through the real command in a subprocess, so that what a user sees is what is checked.
A full disk and a read-only folder are real: a small tmpfs, mounted for the test (which needs
the right to mount, as root in CI has).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, index_contents, write

CORPUS = DATA / "scifact-first-60.jsonl"
NEW_PAPER = '{"id": "new1", "title": "A new paper", "abstract": "On something else entirely."}\n'


def semsearch(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semsearch.cli", *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=600)




def assert_one_line_failure(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("built") / "index"
    result = semsearch("index", CORPUS, "--index", path)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def index(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "index"))


def live(path: Path) -> Path:
    return path / (path / "CURRENT").read_text().strip()


# -- damaged or odd index folders ------------------------------------------------------------

def manifest_not_an_object(path):
    (live(path) / "manifest.json").write_text("[1, 2, 3]\n")


def current_not_utf8(path):
    (path / "CURRENT").write_bytes(b"gen-\xff\xfe\n")


def truncated_vector_index(path):
    target = live(path) / "segments" / "seg-000001" / "vectors.npy"
    target.write_bytes(target.read_bytes()[:-4096])  # a write cut short


FOLDER_FAULTS = {"manifest-not-an-object": (manifest_not_an_object, "manifest.json"),
                 "current-not-utf8": (current_not_utf8, "CURRENT"),
                 "truncated-vectors": (truncated_vector_index, "vectors.npy")}


@pytest.mark.parametrize("command", [["search", "a query"], ["add", "NEW"], ["remove", "4983"],
                                     ["like", "4983"], ["info"]])
@pytest.mark.parametrize("fault", sorted(FOLDER_FAULTS))
def test_a_damaged_index_fails_in_one_line_naming_what(index, tmp_path, fault, command):
    damage, named = FOLDER_FAULTS[fault]
    damage(index)
    before = index_contents(index)
    new = write(tmp_path / "new.jsonl", NEW_PAPER)
    args = [str(new) if word == "NEW" else word for word in command]
    assert_one_line_failure(semsearch(*args, "--index", index), named)
    assert index_contents(index) == before


@pytest.mark.parametrize("where", ["a-file", "under-a-file", "impossible"])
@pytest.mark.parametrize("command", ["index", "search"])
def test_an_index_path_that_cannot_be_a_folder_fails_in_one_line(tmp_path, where, command):
    a_file = write(tmp_path / "notes.txt", "mine")
    path = {"a-file": a_file, "under-a-file": a_file / "idx",
            "impossible": Path("/proc/self/nothing/idx")}[where]
    args = ["index", CORPUS] if command == "index" else ["search", "a query"]
    assert_one_line_failure(semsearch(*args, "--index", path))
    assert a_file.read_text() == "mine"


def test_a_query_file_that_is_not_utf8_fails_in_one_line(index, tmp_path):
    query = tmp_path / "query.txt"
    query.write_bytes(b"caf\xe9 au lait")
    assert_one_line_failure(semsearch("search", "--file", query, "--index", index),
                            "query.txt", "UTF-8")


# -- the model cache -------------------------------------------------------------------------

def test_a_damaged_model_cache_is_rebuilt_not_fatal(index, tmp_path):
    cache = tmp_path / "cache"
    assert semsearch("search", "a query", "--index", index,
                     env={"SEMSEARCH_CACHE": str(cache)}).returncode == 0
    for model in cache.rglob("model.onnx"):
        model.write_bytes(model.read_bytes()[:5000])
    result = semsearch("search", "cancer cells", "--index", index,
                       env={"SEMSEARCH_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_an_unwritable_model_cache_fails_in_one_line(index, tmp_path):
    """Embedding papers needs the model cache (the ONNX export); a search's query does not."""
    cache = write(tmp_path / "cache-is-a-file", "not a folder")
    new = write(tmp_path / "new.jsonl", NEW_PAPER)
    assert_one_line_failure(semsearch("add", new, "--index", index,
                                      env={"SEMSEARCH_CACHE": str(cache)}), "SEMSEARCH_CACHE")
    searched = semsearch("search", "a query", "--index", index, "--mode", "dense",
                         env={"SEMSEARCH_CACHE": str(cache)})
    assert searched.returncode == 0, searched.stderr


# -- a full disk and a read-only folder (real ones, on a small tmpfs) ------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of a few MB, mounted for the test; its size can be changed with remount."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Take all free space on ``disk`` but ``leave`` bytes."""
    status = os.statvfs(disk)
    free = status.f_bavail * status.f_frsize
    (disk / "filler").write_bytes(b"\0" * max(free - leave, 0))


def disk_use(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("share", [0, 0.05, 0.3, 0.6, 0.9])
def test_a_full_disk_during_a_build_fails_in_one_line_and_leaves_nothing(small_disk, built,
                                                                         share):
    leave = int(share * disk_use(built))
    fill(small_disk, leave)
    free_before = os.statvfs(small_disk).f_bavail
    result = semsearch("index", CORPUS, "--index", small_disk / "idx")
    if result.returncode == 0:
        pytest.fail(f"the build fitted in {leave} bytes: make the disk smaller")
    assert_one_line_failure(result)
    assert not (small_disk / "idx").exists() or not any(
        p.name.startswith("gen-") for p in (small_disk / "idx").iterdir())
    assert os.statvfs(small_disk).f_bavail == free_before  # no partial copy left behind


@pytest.mark.parametrize("leave", [0, 4096, 16384, 65536, 262144])
@pytest.mark.parametrize("command", ["add", "remove"])
def test_a_full_disk_during_a_write_fails_in_one_line_or_succeeds_whole(small_disk, built,
                                                                        tmp_path, leave,
                                                                        command):
    """A write costs little disk now, so some of these fit: then it must have landed whole."""
    path = Path(shutil.copytree(built, small_disk / "idx"))
    new = write(tmp_path / "new.jsonl", NEW_PAPER)
    fill(small_disk, leave)
    before = index_contents(path)
    args = ["add", new] if command == "add" else ["remove", "4983"]
    result = semsearch(*args, "--index", path)
    if result.returncode != 0:
        assert_one_line_failure(result)
        assert index_contents(path) == before
        assert semsearch("search", "a query", "--index", path).returncode == 0  # disk still full
    else:
        assert index_contents(path) != before
        (small_disk / "filler").unlink()
        assert semsearch("verify", "--index", path).returncode == 0
    shown = semsearch("show", "new1" if command == "add" else "4983", "--index", path)
    assert (shown.returncode == 0) == ((result.returncode == 0) == (command == "add"))


def test_a_read_only_index_answers_queries_and_refuses_writes_in_one_line(small_disk, built,
                                                                          tmp_path):
    path = Path(shutil.copytree(built, small_disk / "idx"))
    assert semsearch("search", "a query", "--index", path).returncode == 0  # stamps recorded
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    before = index_contents(path)
    assert semsearch("search", "a query", "--index", path).returncode == 0
    new = write(tmp_path / "new.jsonl", NEW_PAPER)
    for args in (["add", new], ["remove", "4983"], ["index", CORPUS], ["reindex"]):
        assert_one_line_failure(semsearch(*args, "--index", path))
    assert index_contents(path) == before
