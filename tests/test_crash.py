"""Crash safety: a writer killed with SIGKILL, or interrupted with SIGINT right at its commit,
never leaves a broken index.

After every kill the index must open, pass `verify`, hold exactly the documents of the last
committed operation (the one in flight may or may not have landed, nothing in between), and
answer searches. Adds, removes, the merges that follow adds, and re-trainings are killed.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from semsearch import Engine
from semsearch.documents import Document

from conftest import HashingEmbedder, worker_process
from crash_worker import apply

WORKER = Path(__file__).with_name("crash_worker.py")


def stored_ids(path: Path) -> set[str]:
    with Engine.open(path, embedder=HashingEmbedder()) as engine:
        return set(engine.ids())


def start_index(path: Path, kind: str, count: int = 1500) -> list[set[str]]:
    docs = [Document(f"d{i}", f"Paper {i} on topic{i % 41}",
                     f"Words about subject{i % 37}, method{i % 13} and result{i}.")
            for i in range(count)]
    Engine(path, embedder=HashingEmbedder()).build(docs, index_type=kind)
    return [{doc.id for doc in docs}]     # states[n]: the ids after operation n - 1


def check_after(path: Path, states: list[set[str]], committed: list[int], attempt: int) -> None:
    """The index holds the last committed state or the one in flight; it verifies and
    answers."""
    for number in committed:
        states.append(apply(number, states[-1]))
    in_flight = apply(len(states) - 1, states[-1])
    found = stored_ids(path)
    assert found in (states[-1], in_flight), f"attempt {attempt}: a mix of two states"
    if found == in_flight:  # committed, killed before it could say so (or a re-training,
        states.append(in_flight)  # which changes no ids either way: the next worker goes on)
    with Engine.open(path, embedder=HashingEmbedder()) as engine:
        assert engine.verify() == [], f"attempt {attempt}"
        assert engine.info().count == len(found)
        hits = engine.search("subject3 method4", k=10)
        assert len(hits) == 10 and {hit.id for hit in hits} <= found


def run_worker(path: Path, first: int, merge_at=None, fold_at=None):
    extra = [str(merge_at), str(fold_at)] if merge_at else []
    worker = worker_process([sys.executable, str(WORKER), str(path), str(first), *extra],
                            stdout=subprocess.PIPE, text=True, cwd=WORKER.parent)
    assert worker.stdout.readline().strip() == "ready"
    return worker


def said(worker, already: list[str] = ()) -> tuple[list[int], str]:
    """What a killed worker had said (``already``: lines read before the kill): the operations
    it committed, and what was in flight."""
    # through the same buffered reader as ``run_worker``'s readline (communicate would read the
    # pipe beneath it, and lose, or cut in two, the lines that readline had read ahead)
    worker.wait(timeout=120)
    lines = [*already, *worker.stdout.read().splitlines()]
    committed = [int(line.split()[1]) for line in lines if line.startswith("committed")]
    doing = ""
    for line in lines:
        words = line.split()
        if words[0] == "begin":
            doing = words[2]
        elif words[0] == "merging":
            doing = "merge"
        elif words[0] == "committed":
            doing = ""
    return committed, doing


def test_said_keeps_the_lines_read_ahead_with_ready():
    """The worker's lines that came in one read with "ready" are not lost, and a line that
    came in two reads is read whole."""
    code = ("import sys, time\n"
            "sys.stdout.write('ready\\nbegin 0 add\\ncommitted 0'); sys.stdout.flush()\n"
            "time.sleep(0.3); print('\\nbegin 1 remove', flush=True)")
    worker = worker_process([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    assert said(worker) == ([0], "remove")


def wait_for_start(worker, wanted: set[str], deadline: float) -> tuple[list[str], str]:
    """Read the worker's lines until it starts one of the ``wanted`` kinds of write (or the
    deadline passes): the lines read, and the kind started ("" if none)."""
    lines = []
    while time.monotonic() < deadline:
        line = worker.stdout.readline().strip()
        if not line:
            break
        lines.append(line)
        words = line.split()
        kind = "merge" if words[0] == "merging" else words[2] if words[0] == "begin" else ""
        if kind in wanted:
            return lines, kind
    return lines, ""


KILLS = {"add": 10, "remove": 10, "merge": 10, "reindex": 10}
#: about how long each kind of write takes here, at most (the kill lands at a random moment
#: inside; the window narrows each time a kill comes after the write it was meant for)
LASTS = {"add": 0.4, "remove": 0.2, "merge": 0.4, "reindex": 1.5}


def test_sigkill_at_random_moments_of_every_kind_of_write(tmp_path):
    """At least 10 kills inside each of add, remove, merge and reindex (merges made frequent:
    at a third small segment, folds at 130 rows), on an IVF index: the worker is let run until
    it starts a kind of write that needs more kills, then killed at a random moment of it."""
    path = tmp_path / "ivf"
    states = start_index(path, "ivf")
    rng = random.Random(7)
    killed: Counter[str] = Counter()
    lasts = dict(LASTS)
    for attempt in range(200):
        needed = {kind for kind, need in KILLS.items() if killed[kind] < need}
        if not needed:
            break
        worker = run_worker(path, len(states) - 1, merge_at=2, fold_at=130)
        lines, started = wait_for_start(worker, needed, time.monotonic() + 60)
        # a random moment of the write that started (of the longest needed, if none did)
        time.sleep(rng.uniform(0.0, lasts.get(started) or max(lasts[k] for k in needed)))
        worker.send_signal(signal.SIGKILL)
        committed, doing = said(worker, lines)
        killed[doing or "between"] += 1
        if started and int(lines[-1].split()[1]) in committed:  # over before the kill
            lasts[started] *= 0.6  # aim earlier next time
        check_after(path, states, committed, attempt)
    assert all(killed[kind] >= need for kind, need in KILLS.items()), killed


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_sigkill_during_writes_on_other_index_types(kind, tmp_path):
    path = tmp_path / kind
    states = start_index(path, kind)
    rng = random.Random(kind)
    for attempt in range(6):
        worker = run_worker(path, len(states) - 1)
        lines, _ = wait_for_start(worker, {"add", "remove", "reindex"}, time.monotonic() + 60)
        time.sleep(rng.uniform(0.0, 1.5))
        worker.send_signal(signal.SIGKILL)
        committed, _ = said(worker, lines)
        check_after(path, states, committed, attempt)
    assert len(states) > 3, "the writer hardly ever got to commit"


SIGINTS = 20


def latest_commit(database: sqlite3.Connection) -> int:
    return database.execute("SELECT max(number) FROM commits").fetchone()[0]


def test_sigint_right_at_the_commit_never_loses_a_write(tmp_path):
    """Ctrl-C that lands the moment a write's commit record appears (watched for in the
    database, and signalled at once) leaves the state before or after that write."""
    path = tmp_path / "index"
    states = start_index(path, "exact", count=300)
    for attempt in range(SIGINTS):
        generation = path / (path / "CURRENT").read_text().strip()
        database = sqlite3.connect(f"file:{generation / 'documents.sqlite'}?mode=ro", uri=True,
                                   isolation_level=None)
        before = latest_commit(database)
        worker = run_worker(path, len(states) - 1)
        deadline = time.monotonic() + 30
        while latest_commit(database) == before and time.monotonic() < deadline:
            pass
        worker.send_signal(signal.SIGINT)
        database.close()
        committed, _ = said(worker)
        check_after(path, states, committed, attempt)
    assert len(states) > SIGINTS // 2


BUILDER = """
import sys
sys.path.insert(0, {tests!r})
from conftest import HashingEmbedder, worker_process
from semsearch import Engine
from semsearch.documents import Document
print("ready", flush=True)
for number in range(10_000):
    Engine({path!r}, embedder=HashingEmbedder()).build(
        [Document(f"b{{number}}-{{i}}", f"Built {{number}} paper {{i}}", "Words.")
         for i in range(50)])
    print(f"committed {{number}}", flush=True)
"""


def test_sigint_right_as_a_build_switches_never_loses_the_index(tmp_path):
    """A build's commit is the rename of CURRENT: watched for, and signalled at once."""
    path = tmp_path / "built"
    Engine(path, embedder=HashingEmbedder()).build([Document("x", "First", "Words.")])
    pointer = path / "CURRENT"
    for attempt in range(SIGINTS):
        code = BUILDER.format(tests=str(WORKER.parent), path=str(path))
        worker = worker_process([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert worker.stdout.readline().strip() == "ready"
        before = pointer.read_bytes()
        deadline = time.monotonic() + 30
        while pointer.read_bytes() == before and time.monotonic() < deadline:
            pass
        worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=120)
        live = path / pointer.read_text().strip()
        assert live.is_dir(), f"attempt {attempt}: CURRENT names a deleted generation"
        with Engine.open(path, embedder=HashingEmbedder()) as engine:
            assert engine.verify() == [] and engine.info().count in (1, 50)


def test_a_worker_stops_at_ctrl_c_even_when_the_suite_runs_with_it_ignored(tmp_path):
    """A suite started as a background job of a script runs with SIGINT ignored, and its
    children inherit that: the crash tests' workers must take Ctrl-C all the same."""
    code = f"""
import signal, subprocess, sys
sys.path.insert(0, {str(WORKER.parent)!r})
signal.signal(signal.SIGINT, signal.SIG_IGN)
from conftest import worker_process
# short sleeps: a signal taken by a thread other than the main one does not cut a long sleep
child = worker_process([sys.executable, "-c",
                        "import time\\nprint('up', flush=True)\\nfor _ in range(600): time.sleep(0.1)"],
                       stdout=subprocess.PIPE, text=True)
child.stdout.readline()
child.send_signal(signal.SIGINT)
print(child.wait(timeout=30))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == -signal.SIGINT
