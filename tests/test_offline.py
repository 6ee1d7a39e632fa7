"""semsearch never tries the network: every socket connection any process of a command makes
(its children included) is traced by the kernel, through strace, and any to an internet
address fails the test. A fresh model cache makes the first build export the model, so the
torch and transformers path is traced too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, write

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace is not installed (the README's "
                                                       "test command installs it)")

#: a connect or send to an IPv4 or IPv6 address, as strace prints it
INTERNET = re.compile(r"(connect|sendto|sendmsg)\(.*sa_family=AF_INET6?\b")
#: this machine's own addresses: a local Ray instance's processes talk over them
LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "(::1|::ffff:127\.)')

LIBRARY_QUERY = """
import semsearch
engine = semsearch.Engine({path!r}, bf16_queries={bf16})
print(engine.search("protein folding", k=3)[0].id)
"""


def traced(args: list[str], tmp_path: Path, env: dict[str, str]) -> list[str]:
    """Run a command under strace; the lines where any of its processes reached for the net."""
    log = tmp_path / f"trace-{len(list(tmp_path.glob('trace-*')))}.txt"
    # --seccomp-bpf: the kernel stops the command at these calls alone, not at every call
    result = subprocess.run([STRACE, "-f", "-qq", "--seccomp-bpf",
                             "-e", "trace=connect,sendto,sendmsg",
                             "-o", str(log), *args], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return [line for line in log.read_text().splitlines()
            if INTERNET.search(line) and not LOOPBACK.search(line)]


def test_no_command_and_no_library_call_tries_the_network(tmp_path):
    env = {"SEMSEARCH_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path / "home"),
           "SEMSEARCH_INDEX_ROOT": str(tmp_path / "indexes")}
    cli = [sys.executable, "-m", "semsearch.cli"]
    collection = tmp_path / "beir"
    shutil.copy(DATA / "scifact-first-60.jsonl", write(collection / "corpus.jsonl", ""))
    write(collection / "queries.jsonl", json.dumps({"_id": "q1", "text": "cancer cells"}) + "\n")
    write(collection / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\t4983\t1\n")
    runs = {
        "index": cli + ["index", str(DATA / "scifact-first-60.jsonl"), "--index", "papers"],
        "search": cli + ["search", "cancer cells", "--index", "papers"],
        "like": cli + ["like", "4983", "--index", "papers"],
        "add": cli + ["add", str(write(tmp_path / "new.jsonl", '{"id": "n", "title": "New", '
                                                               '"abstract": "A new paper."}\n')),
                      "--index", "papers"],
        "eval": cli + ["eval", str(collection)],
        "index --ray": cli + ["index", str(DATA / "scifact-first-60.jsonl"), "--index",
                              "papers-on-ray", "--ray", "--ray-actors", "1"],
        "library query": [sys.executable, "-c", LIBRARY_QUERY.format(
            path=str(tmp_path / "indexes" / "papers"), bf16=False)],
        "library query in bf16": [sys.executable, "-c", LIBRARY_QUERY.format(
            path=str(tmp_path / "indexes" / "papers"), bf16=True)],
    }
    attempts = {name: traced(args, tmp_path, env) for name, args in runs.items()}
    assert {name: lines for name, lines in attempts.items() if lines} == {}
    assert not (tmp_path / "home" / "intel").exists()  # OpenVINO's usage counters
    assert not (tmp_path / "home" / ".cache" / "Microsoft").exists()  # onnxruntime's events
