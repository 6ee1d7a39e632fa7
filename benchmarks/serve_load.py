"""How `semsearch serve` holds up under concurrent clients: requests/s and latency p50/p99 of
`GET /api/search` (hybrid, k 10) at 1, 4 and 16 concurrent clients, on the bundled sample and
on 1M papers, and again while `semsearch add` writes to the index from another process.
Beside it, the library's warm query at the same size (`Engine.search` in one process), which a
request's p50 at one client is compared with (target: within 2 ms).

The client is a bounded asyncio load (one keep-alive connection a client, on asyncio's own
streams): a fixed number of requests a setting, queries taking turns from SciFact's claims; it stops by itself.
Client and server share this machine's two cores, as they would on a laptop.

    python benchmarks/serve_load.py                  # sample and 1M, three runs each
    python benchmarks/serve_load.py --sizes sample --runs 1   # about a minute

The 1M index is a copy of scale.py's (SciFact's texts and vectors made like them); the papers
the measured `add` writes are removed again afterwards. Writes results/serve_load.json, .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from _common import SCRATCH, arguments, claim_texts

WORK = SCRATCH / "serve"
CLIENTS = (1, 4, 16)
REQUESTS = {1: 300, 4: 600, 16: 800}
WARM_REQUESTS = 50
LIBRARY_QUERIES = REQUESTS[1]
ADDED = 200  # papers the concurrent `semsearch add` writes
TARGET_MS_OVER_LIBRARY = 2.0


def index_for(size: str) -> Path:
    """The served index: the sample, built once; or a copy of scale.py's 1M index."""
    from semsearch import Engine, read_documents, sample_paths

    folder = WORK / size
    if (folder / "CURRENT").exists():
        return folder
    if size == "sample":
        Engine(folder).build(read_documents([str(p) for p in sample_paths()]))
        return folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    documents, real = scale.scifact()
    base = scale.base_index(int(size), documents, real)
    shutil.copytree(base, folder)
    return folder


def library_latency(folder: Path, queries: list[str]) -> dict:
    from semsearch import Engine

    with Engine.open(folder) as engine:
        engine.warm_up()
        # the measured queries once untimed: the pages they read are then in memory, as they
        # are for the server, which runs them after this
        for query in queries[-WARM_REQUESTS:] + queries[:LIBRARY_QUERIES]:
            engine.search(query, 10)
        times = []
        for query in queries[:LIBRARY_QUERIES]:
            started = time.perf_counter()
            engine.search(query, 10)
            times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(float(np.percentile(times, 99)), 2), "queries": len(times)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (WORK / f"server-{folder.name}.log").open("a")  # its errors, with tracebacks
    server = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--index",
                               str(folder), "--port", str(port)], stdout=log,
                              stderr=subprocess.STDOUT, text=True)
    address = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    import httpx

    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped: see {log.name}")
        try:
            if httpx.get(address + "/api/info", timeout=5).status_code == 200:
                return server, address
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    sys.exit("the server did not start in 5 minutes")


class Connection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads whole answers: a client as
    light as asyncio allows, so that what is timed is the server (httpx spends about a
    millisecond of these two cores on each request itself)."""

    def __init__(self, address: str):
        self.host, port = address.removeprefix("http://").split(":")
        self.port = int(port)

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()

    async def get(self, target: str) -> tuple[int, bytes]:
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        body = await self.reader.readexactly(int(length.group(1)))
        return int(head.split(b" ", 2)[1]), body


async def load(address: str, queries: list[str], clients: int, requests: int,
               until: subprocess.Popen | None = None) -> dict:
    """``requests`` searches from ``clients`` concurrent clients (or, with ``until``, as many
    as it takes that process to end, at most 20 times ``requests``)."""
    times: list[float] = []
    errors: list[str] = []
    sent = 0
    limit = requests * 20 if until else requests

    async def client():
        nonlocal sent
        async with Connection(address) as connection:
            while sent < limit and (until is None or until.poll() is None):
                query = queries[sent % len(queries)]
                sent += 1
                started = time.perf_counter()
                try:
                    status, body = await connection.get(
                        "/api/search?" + urlencode({"q": query, "k": 10}))
                    times.append((time.perf_counter() - started) * 1000)
                    if status != 200 or not json.loads(body)["results"]:
                        errors.append(f"{status} {body[:200]!r}")
                except (OSError, asyncio.IncompleteReadError) as error:
                    errors.append(repr(error))
                    return

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return {"clients": clients, "requests": len(times), "errors": len(errors),
            "error_examples": errors[:3], "requests_per_s": round(len(times) / seconds, 1),
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(float(np.percentile(times, 99)), 2)}


def during_add(folder: Path, address: str, queries: list[str]) -> dict:
    """Load from 4 clients while `semsearch add` writes ADDED new papers; then the count the
    server reports, without a restart; then the papers removed again."""
    import httpx

    before = httpx.get(address + "/api/info").json()["count"]
    stamp = int(time.time())
    papers = Path(tempfile.mkdtemp()) / "new.jsonl"
    with papers.open("w") as handle:
        for number in range(ADDED):
            query = queries[number % len(queries)]
            handle.write(json.dumps({"id": f"load-{stamp}-{number}",
                                     "title": f"A new study {number}: {query[:60]}",
                                     "abstract": f"{query} We report a new study."}) + "\n")
    started = time.perf_counter()
    writer = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "add", str(papers),
                               "--index", str(folder)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    measured = asyncio.run(load(address, queries, 4, REQUESTS[4], until=writer))
    output = writer.communicate()[0]
    add_seconds = time.perf_counter() - started
    if writer.returncode:
        sys.exit(f"semsearch add failed: {output}")
    after = httpx.get(address + "/api/info").json()["count"]
    subprocess.run([sys.executable, "-m", "semsearch.cli", "remove", "--index", str(folder),
                    *[f"load-{stamp}-{n}" for n in range(ADDED)]], check=True,
                   stdout=subprocess.DEVNULL)
    return {**measured, "add_seconds": round(add_seconds, 1), "count_before": before,
            "count_after_add": after, "added": ADDED}


def measure(size: str) -> dict:
    folder = index_for(size)
    queries = claim_texts()
    library = library_latency(folder, queries)
    print(f"{size}: library warm hybrid p50 {library['p50_ms']} ms", flush=True)
    server, address = start_server(folder)
    try:
        asyncio.run(load(address, queries[-WARM_REQUESTS:], 1, WARM_REQUESTS))
        settings = []
        for clients in CLIENTS:  # at 1 client, the library's queries, in its order
            settings.append(asyncio.run(load(address, queries, clients, REQUESTS[clients])))
            print(f"{size}: {json.dumps(settings[-1])}", flush=True)
        writing = during_add(folder, address, queries)
        print(f"{size} during add: {json.dumps(writing)}", flush=True)
    finally:
        server.terminate()
        server.wait(30)
    one = settings[0]
    return {"size": size, "library": library, "settings": settings, "during_add": writing,
            "p50_over_library_ms": round(one["p50_ms"] - library["p50_ms"], 2)}


def median_run(size: str, runs: int) -> dict:
    """``runs`` full runs of a size; the one whose p50 over the library's is the median, with
    every run's difference beside it."""
    each = sorted((measure(size) for _ in range(runs)), key=lambda r: r["p50_over_library_ms"])
    return {**each[len(each) // 2],
            "p50_over_library_ms_each_run": [r["p50_over_library_ms"] for r in each]}


def markdown(results: list[dict]) -> str:
    lines = ["| index | clients | requests/s | p50 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|"]
    for result in results:
        for s in result["settings"]:
            lines.append(f"| {result['size']} | {s['clients']} | {s['requests_per_s']} | "
                         f"{s['p50_ms']} | {s['p99_ms']} | {s['errors']} of {s['requests']} |")
        w = result["during_add"]
        lines.append(f"| {result['size']}, during `add` of {w['added']} | {w['clients']} | "
                     f"{w['requests_per_s']} | {w['p50_ms']} | {w['p99_ms']} | "
                     f"{w['errors']} of {w['requests']} |")
    lines += ["", "| index | library warm p50 ms | server p50 at 1 client | difference ms "
                  f"(target <= {TARGET_MS_OVER_LIBRARY}; every run) | count seen after `add`, "
                  "no restart |", "|---|---|---|---|---|"]
    for result in results:
        w = result["during_add"]
        every = ", ".join(str(d) for d in result.get("p50_over_library_ms_each_run", []))
        lines.append(f"| {result['size']} | {result['library']['p50_ms']} | "
                     f"{result['settings'][0]['p50_ms']} | {result['p50_over_library_ms']} "
                     f"({every}) | {w['count_before']:,} -> {w['count_after_add']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="sample,1000000")
    parser.add_argument("--runs", type=int, default=3,
                        help="full runs a size; the tables show the median one")
    args = arguments(parser)
    results = [median_run(size, args.runs) for size in args.sizes.split(",")]
    path = args.results / "serve_load.json"
    if path.exists():  # a run of some sizes replaces theirs
        fresh = {r["size"] for r in results}
        results = [r for r in json.loads(path.read_text())["results"]
                   if r["size"] not in fresh] + results
    path.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "results": results},
                               indent=2) + "\n")
    (args.results / "serve_load.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
