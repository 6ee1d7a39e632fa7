"""semsearch's vector search beside the libraries a user would otherwise reach for.

    python benchmarks/peers.py                      # 100k and 1M (hours; LARGEST says which
                                                    # systems stop at 100k)
    python benchmarks/peers.py --sizes 100000       # one size
    python benchmarks/peers.py --systems semsearch,hnswlib   # replaces just their results
    python benchmarks/peers.py --rounds 3          # timings: the median of three, in turns

Needs `pip install -e ".[bench]"` (FAISS comes with semsearch; usearch, hnswlib, Chroma,
LanceDB and txtai are the extra's).

The same vectors and the same short queries go to every system:
- Documents: SciFact's 5,183 abstracts embedded by all-MiniLM-L6-v2, then synthetic vectors
  shaped like them (_common.synthetic_documents: real seeds moved by noise with the real vectors'
  covariance), to 100k and 1M.
- Queries, all embedded by the bundled model as queries: 5,000 fragments of 3 to 8 words from
  titles and sentences of half of SciFact's documents, and SciFact's 1,109 claims.
- semsearch is given 4,000 other fragments, from the other half's titles and sentences (it
  tunes on half and reports the recall on the rest), passed to `Engine.build(..., vectors=,
  query_vectors=)` as a user with their own vectors would; it never sees the measured queries.
  The peers are given their best case instead: each one's search knob is swept, and for each
  recall target the cheapest setting that reaches it on the measured queries themselves is
  reported.

Measured for each system and setting: recall@10 against exact search (all queries, and
fragments and claims apart), single-query latency p50 and p99 (one query at a time, one
thread; semsearch's includes fetching the hits' papers), batch QPS (every query in one call,
every core), and once per system: build time, memory a vector while serving (resident:
anonymous and file pages; allocated: anonymous only) and cold start (a fresh process loading
the saved index and answering one query). Each system runs in a process of its own.

Writes benchmarks/results/peers.json and peers.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from semsearch.index.vector import (  # the ANN benchmark may (DESIGN.md)
    exact_top, recall_at, recall_per_query)

from _common import (SCRATCH, arguments, SHARED, claim_texts, real_vectors, require,
                     synthetic_documents)

TARGETS = (0.90, 0.95, 0.97, 0.99)
SYSTEMS = ("semsearch", "faiss-ivf", "faiss-hnsw", "usearch", "hnswlib", "hnswlib-m32", "chroma",
           "lancedb", "txtai")
#: the largest size a system is measured at: Chroma, LanceDB and txtai take hours a size at 1M
#: on a 2-core machine and are far from the best at 100k (see the tables); --all-sizes lifts it
LARGEST = {"chroma": 100_000, "lancedb": 100_000, "txtai": 100_000}
SINGLE_QUERIES = 600   # timed one at a time: the first 300 fragments and the first 300 claims
#: fragments measured: enough that a recall's standard error (in the results) is well inside
#: the 0.01 `info` is held to, which 1,000 were not; the first 1,000 are the earlier set
MEASURED_FRAGMENTS = 5000
WORK = SCRATCH / "peers"


# -- data -----------------------------------------------------------------------------------

def prepare(sizes: list[int]) -> None:
    """Documents, queries and exact answers, written once to the scratch folder; a size asked
    for later gets its exact answers from the documents already there."""
    WORK.mkdir(parents=True, exist_ok=True)
    split = WORK / "queries.json"
    if not split.exists() or json.loads(split.read_text())["fragments"] != MEASURED_FRAGMENTS:
        embed_queries()
        for stale in WORK.glob("truth-*.npy"):
            stale.unlink()
    missing = [n for n in sizes if not (WORK / f"truth-{n}.npy").exists()]
    if not missing:
        return
    stored = WORK / "documents.npy"
    if stored.exists() and len(np.load(stored, mmap_mode="r")) >= max(sizes):
        largest = np.load(stored, mmap_mode="r")
    else:
        real, _ = real_vectors()
        largest = synthetic_documents(real, max(sizes))
        np.save(stored, largest)
        missing = sizes
    queries = np.load(WORK / "queries.npy")
    for n in missing:
        truth = exact_top(np.ascontiguousarray(largest[:n]), np.arange(n, dtype=np.int64),
                          queries, 10)
        np.save(WORK / f"truth-{n}.npy", truth)


def embed_queries() -> None:
    """The fragments semsearch tunes on, and the fragments and claims every system is
    measured on, embedded as queries."""
    from semsearch.embedding import OnnxEmbedder
    from semsearch.readers import read_documents

    documents = list(read_documents([SHARED / "scifact" / "corpus.jsonl"]))
    half = len(documents) // 2
    embedder = OnnxEmbedder()
    tuning = fragments(documents[:half], 4000, seed=1)
    measured = fragments(documents[half:], MEASURED_FRAGMENTS, seed=2)
    claims = claim_texts()
    np.save(WORK / "tuning.npy", embedder.embed_queries(tuning))
    np.save(WORK / "queries.npy", np.concatenate([embedder.embed_queries(measured),
                                                  embedder.embed_queries(claims)]))
    (WORK / "queries.json").write_text(json.dumps({"fragments": len(measured),
                                                   "claims": len(claims)}))


def fragments(documents, count: int, seed: int) -> list[str]:
    """Runs of 3 to 8 words from the documents' titles and sentences, as people type."""
    rng = random.Random(seed)
    texts = [d.title for d in documents if d.title] + [
        s for d in documents for s in re.split(r"(?<=[.!?])\s+", d.abstract) if len(s.split()) > 2]
    out = []
    while len(out) < count:
        words = rng.choice(texts).split()
        if len(words) < 3:
            continue
        length = rng.randint(3, min(8, len(words)))
        start = rng.randint(0, len(words) - length)
        out.append(" ".join(words[start:start + length]))
    return out


def load(n: int):
    documents = np.load(WORK / "documents.npy", mmap_mode="r")[:n]
    split = json.loads((WORK / "queries.json").read_text())
    return (np.ascontiguousarray(documents), np.load(WORK / "queries.npy"),
            np.load(WORK / f"truth-{n}.npy"), np.load(WORK / "tuning.npy"), split["fragments"])


# -- the systems ----------------------------------------------------------------------------

class System:
    """One library, built over the documents, searched at one setting of its knob at a time."""

    knob = ""
    values: tuple = ()

    def build(self, vectors: np.ndarray, folder: Path) -> None: ...
    def set(self, value) -> None: ...
    def search(self, query: np.ndarray) -> list[int]: ...
    def search_batch(self, queries: np.ndarray) -> np.ndarray: ...
    def save(self, folder: Path) -> None: ...
    #: a Python statement that loads the saved index from FOLDER into ``index`` and a function
    #: ``ask(query)`` that answers one query: for the cold-start measurement
    cold = ""


class FaissIvf(System):
    knob, values = "nprobe", (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

    def build(self, vectors, folder):
        import faiss

        lists = int(min(4 * np.sqrt(len(vectors)), len(vectors) // 39))
        self.index = faiss.index_factory(vectors.shape[1], f"IVF{lists},Flat",
                                         faiss.METRIC_INNER_PRODUCT)
        self.index.train(vectors)
        self.index.add(vectors)

    def set(self, value):
        self.index.nprobe = value

    def search(self, query):
        return self.index.search(query[None], 10)[1][0]

    def search_batch(self, queries):
        return self.index.search(queries, 10)[1]

    def save(self, folder):
        import faiss

        faiss.write_index(self.index, str(folder / "index.faiss"))

    cold = ("import faiss; index = faiss.read_index(str(FOLDER / 'index.faiss')); "
            "index.nprobe = 32; ask = lambda q: index.search(q[None], 10)")


class FaissHnsw(FaissIvf):
    knob, values = "efSearch", (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)

    def build(self, vectors, folder):
        import faiss

        self.index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        self.index.add(vectors)

    def set(self, value):
        self.index.hnsw.efSearch = value

    cold = ("import faiss; index = faiss.read_index(str(FOLDER / 'index.faiss')); "
            "ask = lambda q: index.search(q[None], 10)")


class Usearch(System):
    knob, values = "expansion_search", (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)

    def build(self, vectors, folder):
        from usearch.index import Index

        self.index = Index(ndim=vectors.shape[1], metric="ip", dtype="f32")
        self.index.add(np.arange(len(vectors)), vectors, threads=os.cpu_count() or 1)

    def set(self, value):
        self.index.expansion_search = value

    def search(self, query):
        return self.index.search(query, 10, threads=1).keys

    def search_batch(self, queries):
        return self.index.search(queries, 10, threads=os.cpu_count() or 1).keys

    def save(self, folder):
        self.index.save(str(folder / "index.usearch"))

    cold = ("from usearch.index import Index; index = Index.restore(str(FOLDER / "
            "'index.usearch'), view=True); ask = lambda q: index.search(q, 10, threads=1)")


class Hnswlib(System):
    knob, values = "ef", (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)
    #: links a node: 16, hnswlib's usual choice
    links = 16

    def build(self, vectors, folder):
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        self.index.init_index(max_elements=len(vectors), ef_construction=200, M=self.links)
        self.index.add_items(vectors, np.arange(len(vectors)))

    def set(self, value):
        self.index.set_ef(value)

    def search(self, query):
        self.index.set_num_threads(1)
        return self.index.knn_query(query, k=10)[0][0]

    def search_batch(self, queries):
        self.index.set_num_threads(os.cpu_count() or 1)
        return self.index.knn_query(queries, k=10)[0]

    def save(self, folder):
        self.index.save_index(str(folder / "index.hnswlib"))

    cold = ("import hnswlib; index = hnswlib.Index(space='ip', dim=384); "
            "index.load_index(str(FOLDER / 'index.hnswlib')); index.set_ef(64); "
            "index.set_num_threads(1); ask = lambda q: index.knn_query(q, k=10)")


class HnswlibDense(Hnswlib):
    """A denser graph, for the collections where 16 links never reach the recall wanted."""

    links = 32


class Chroma(System):
    knob, values = "ef_search", (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)
    #: a changed ef_search takes effect only in a process that opens the collection anew
    reopen_per_setting = True

    def build(self, vectors, folder):
        import chromadb

        self.client = chromadb.PersistentClient(
            path=str(folder / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False))
        self.collection = self.client.create_collection("vectors", configuration={"hnsw": {
            "space": "ip", "ef_construction": 100, "max_neighbors": 16}})
        batch = self.client.get_max_batch_size()
        for start in range(0, len(vectors), batch):
            stop = min(start + batch, len(vectors))
            self.collection.add(ids=[str(i) for i in range(start, stop)],
                                embeddings=vectors[start:stop])

    def set(self, value):
        self.collection.modify(configuration={"hnsw": {"ef_search": value}})

    def open(self, folder):
        import chromadb

        self.client = chromadb.PersistentClient(
            path=str(folder / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False))
        self.collection = self.client.get_collection("vectors")

    def search(self, query):
        return [int(i) for i in self.collection.query(query_embeddings=query[None],
                                                      n_results=10, include=[])["ids"][0]]

    def search_batch(self, queries):
        found = self.collection.query(query_embeddings=queries, n_results=10, include=[])["ids"]
        return np.array([[int(i) for i in ids] + [-1] * (10 - len(ids)) for ids in found])

    def save(self, folder):
        pass  # persistent as it is written

    cold = ("import chromadb; client = chromadb.PersistentClient(path=str(FOLDER / 'chroma'), "
            "settings=chromadb.Settings(anonymized_telemetry=False)); "
            "index = client.get_collection('vectors'); "
            "ask = lambda q: index.query(query_embeddings=q[None], n_results=10, include=[])")


class Lance(System):
    knob, values = "nprobes", (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

    def build(self, vectors, folder):
        import lancedb
        import pyarrow as pa

        self.db = lancedb.connect(str(folder / "lance"))
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
        self.table = self.db.create_table("vectors", pa.table({
            "id": pa.array(np.arange(len(vectors))), "vector": column}))
        lists = int(min(4 * np.sqrt(len(vectors)), len(vectors) // 39))
        self.table.create_index(metric="dot", vector_column_name="vector",
                                index_type="IVF_PQ", num_partitions=lists, num_sub_vectors=96)
        self.nprobes = 32

    def set(self, value):
        self.nprobes = value

    def _query(self, query):
        return (self.table.search(query).metric("dot").nprobes(self.nprobes).refine_factor(10)
                .limit(10).select(["id", "_distance"]))

    def search(self, query):
        return self._query(query).to_arrow()["id"].to_pylist()

    def search_batch(self, queries):
        # LanceDB takes one query vector a search; its own threads work inside each
        return np.array([ids + [-1] * (10 - len(ids)) for ids in
                         (self.search(query) for query in queries)])

    def save(self, folder):
        pass

    cold = ("import lancedb; table = lancedb.connect(str(FOLDER / 'lance')).open_table("
            "'vectors'); ask = lambda q: table.search(q).metric('dot').nprobes(32)"
            ".refine_factor(10).limit(10).select(['id', '_distance']).to_arrow()")


class Txtai(System):
    knob, values = "nprobe", (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

    def build(self, vectors, folder):
        from txtai import Embeddings

        self.embeddings = Embeddings(method="external", backend="faiss", content=False)
        self.embeddings.index((i, vector, None) for i, vector in enumerate(vectors))

    def set(self, value):
        self.embeddings.ann.config.setdefault("faiss", {})["nprobe"] = value

    def search(self, query):
        return [i for i, _ in self.embeddings.search(query, 10)]

    def search_batch(self, queries):
        return np.array([[i for i, _ in found] + [-1] * (10 - len(found))
                         for found in self.embeddings.batchsearch(queries, 10)])

    def save(self, folder):
        self.embeddings.save(str(folder / "txtai"))

    cold = ("from txtai import Embeddings; index = Embeddings(); "
            "index.load(str(FOLDER / 'txtai')); ask = lambda q: index.search(q, 10)")


PEERS = {"faiss-ivf": FaissIvf, "faiss-hnsw": FaissHnsw, "usearch": Usearch,
         "hnswlib": Hnswlib, "hnswlib-m32": HnswlibDense, "chroma": Chroma, "lancedb": Lance,
         "txtai": Txtai}


# -- measuring ------------------------------------------------------------------------------

def measure(search, search_batch, queries, truth, fragments: int) -> dict:
    found = np.asarray(search_batch(queries), dtype=np.int64)
    started = time.perf_counter()
    search_batch(queries)
    qps = len(queries) / (time.perf_counter() - started)
    singles = np.concatenate([queries[:SINGLE_QUERIES // 2],
                              queries[fragments:fragments + SINGLE_QUERIES // 2]])
    for query in singles[:20]:
        search(query)
    times = []
    for query in singles:
        started = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - started) * 1000)
    per_fragment = recall_per_query(found[:fragments], truth[:fragments])
    return {"recall@10": round(recall_at(found, truth), 4),
            "recall@10_fragments": round(recall_at(found[:fragments], truth[:fragments]), 4),
            # how far the fragments' recall could move with another draw of as many fragments
            "recall@10_fragments_standard_error": round(float(np.std(per_fragment, ddof=1)
                                                              / np.sqrt(fragments)), 4),
            "recall@10_claims": round(recall_at(found[fragments:], truth[fragments:]), 4),
            "p50_ms": round(statistics.median(times), 4),
            "p99_ms": round(float(np.percentile(times, 99)), 4), "batch_qps": round(qps, 1)}


def memory() -> dict[str, int]:
    """This process's resident memory, anonymous and file-backed, in bytes."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def run_peer(name: str, n: int) -> dict:
    vectors, queries, truth, _, fragments = load(n)
    folder = WORK / f"{name}-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    system = PEERS[name]()
    started = time.perf_counter()
    system.build(vectors, folder)
    build_seconds = time.perf_counter() - started
    settings = []
    reopen = getattr(system, "reopen_per_setting", False)
    if reopen:
        system.save(folder)
        del system
        gc.collect()
    for value in PEERS[name].values:
        if reopen:  # set in one process, measured in the next
            for step in ("set", "measure"):
                child = subprocess.run([sys.executable, __file__, "--run",
                                        f"{name}:{n}:{step}:{value}"], stdout=subprocess.PIPE,
                                       text=True, cwd=HERE, check=True)
            measured = json.loads(child.stdout.strip().splitlines()[-1])
        else:
            system.set(value)
            measured = measure(system.search, system.search_batch, queries, truth, fragments)
        settings.append({PEERS[name].knob: value, **measured})
        print(json.dumps({"system": name, "n": n, **settings[-1]}), flush=True)
        if settings[-1]["recall@10"] >= 0.999:
            break
    if not reopen:
        system.save(folder)
        del system
        gc.collect()
    return {"system": name, "n": n, "fragments": fragments,
            "build_seconds": round(build_seconds, 1), "settings": settings,
            **serving(name, folder, n, queries)}


def reopened(name: str, n: int, step: str, value: int) -> None:
    """For a system whose setting takes effect only when its index is opened anew: set it
    (``step`` "set"), or open the index and measure (``step`` "measure")."""
    system = PEERS[name]()
    system.open(WORK / f"{name}-{n}")
    if step == "set":
        system.set(value)
        return
    _, queries, truth, _, fragments = load(n)
    print(json.dumps(measure(system.search, system.search_batch, queries, truth, fragments)))


def serving(name: str, folder: Path, n: int, queries: np.ndarray) -> dict:
    """Cold start, and memory a vector while serving, in a fresh process."""
    code = SERVE.format(folder=str(folder), statement=COLD[name], n=n, benchmarks=str(HERE))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    total = time.perf_counter() - started
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return {"cold_start_seconds": round(total, 3), **measured}


HERE = Path(__file__).resolve().parent
SERVE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
import numpy as np
from peers import memory, WORK
FOLDER = Path({folder!r})
queries = np.load(WORK / "queries.npy")
before = memory()
{statement}
ask(queries[0])
for query in queries[:500]:
    ask(query)
after = memory()
anon = after["RssAnon"] - before["RssAnon"]
resident = anon + after["RssFile"] - before["RssFile"]
print(json.dumps({{"bytes_per_vector_resident": round(resident / {n}, 1),
                  "bytes_per_vector_allocated": round(anon / {n}, 1)}}))
"""
COLD = {name: cls.cold for name, cls in PEERS.items()}
COLD["semsearch"] = ("from semsearch import Engine; index = Engine.open(str(FOLDER / 'index')); "
                     "ask = lambda q: index.search_vector(q, 10)")


def run_semsearch(n: int) -> dict:
    from semsearch import Engine
    from semsearch import Document

    vectors, queries, truth, tuning, fragments = load(n)
    folder = WORK / f"semsearch-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    location = folder / "index"
    papers = (Document(id=f"doc-{i}", title=f"Synthetic paper {i}",
                       abstract=f"Abstract of synthetic paper number {i}.")
              for i in range(len(vectors)))
    engine = Engine(location)
    started = time.perf_counter()
    engine.build(papers, vectors=vectors, query_vectors=tuning, target_recall=TARGETS[0])
    build_seconds = time.perf_counter() - started
    settings = []
    for target in TARGETS:
        if target != TARGETS[0]:
            engine.rebuild(target_recall=target)
        engine.close()
        engine = Engine.open(location)
        info = engine.info()

        def ids_of(answers):
            return np.array([[int(hit.id[4:]) for hit in hits] + [-1] * (10 - len(hits))
                             for hits in answers])

        setting = {"target": target, "params": info.index_params,
                   "reported_recall@10": info.tuned_recall_at_10,
                   **measure(lambda q: engine.search_vector(q, 10),
                             lambda qs: ids_of(engine.search_vectors(qs, 10)),
                             queries, truth, fragments)}
        settings.append(setting)
        print(json.dumps({"system": "semsearch", "n": n, **setting}), flush=True)
    engine.close()
    return {"system": "semsearch", "n": n, "fragments": fragments,
            "build_seconds": round(build_seconds, 1),
            "index_type": info.index_type, "settings": settings,
            **serving("semsearch", folder, n, queries)}


# -- the report -----------------------------------------------------------------------------

def at_target(result: dict, target: float) -> dict | None:
    """The setting a system would be run at for a recall target on short fragments: semsearch's
    own tuning; a peer's cheapest setting that reaches it on the measured fragments."""
    if result["system"] == "semsearch":
        return next(s for s in result["settings"] if s["target"] == target)
    reaching = [s for s in result["settings"] if s["recall@10_fragments"] >= target]
    return min(reaching, key=lambda s: s["p50_ms"]) if reaching else None


def measured(result: dict) -> str:
    fewer = f", on the first {result['fragments']:,} fragments" \
        if result["fragments"] != MEASURED_FRAGMENTS else ""
    when = result.get("measured")
    if not when:
        return "before loads were recorded" + fewer
    rounds = f", median of {result['rounds']} rounds" if result.get("rounds", 1) > 1 else ""
    return f"{when['on']} ({when['load_before']}, {when['load_after']}){rounds}{fewer}"


#: a system's figures that the machine's load moves: their median over rounds is reported
TIMED = ("build_seconds", "cold_start_seconds", "bytes_per_vector_resident",
         "bytes_per_vector_allocated")
TIMED_A_SETTING = ("p50_ms", "p99_ms", "batch_qps")


def median_of_rounds(runs: list[dict]) -> dict:
    """One system's result from several rounds: timings as their medians (each round's kept
    beside them); recall and settings from the first round, which every round repeats (the
    builds are seeded) unless semsearch's timed choice between settings went the other way,
    which the rounds' "params" show."""
    if len(runs) == 1:
        return runs[0]
    result = dict(runs[0], rounds=len(runs),
                  measured={"on": runs[0]["measured"]["on"],
                            "load_before": max(r["measured"]["load_before"] for r in runs),
                            "load_after": max(r["measured"]["load_after"] for r in runs)})
    for field in TIMED:
        result[field] = round(statistics.median(r[field] for r in runs), 3)
    settings = []
    for position, setting in enumerate(runs[0]["settings"]):
        repeats = [r["settings"][position] for r in runs if len(r["settings"]) > position]
        merged = dict(setting)
        for field in TIMED_A_SETTING:
            merged[f"{field}_rounds"] = [s[field] for s in repeats]
            merged[field] = round(statistics.median(merged[f"{field}_rounds"]), 4)
        if "params" in setting:
            merged["params_rounds"] = [s["params"] for s in repeats]
            merged["recall@10_fragments_rounds"] = [s["recall@10_fragments"] for s in repeats]
        settings.append(merged)
    result["settings"] = settings
    return result


def table(results: list[dict]) -> str:
    lines = []
    for n in sorted({r["n"] for r in results}):
        lines += [f"\n### {n:,} vectors\n",
                  "| system | build s | bytes a vector (resident / allocated) | cold start s | "
                  "measured on (load average before, after) |", "|---|---|---|---|---|"]
        for r in (r for r in results if r["n"] == n):
            lines.append(f"| {r['system']} | {r['build_seconds']} | "
                         f"{r['bytes_per_vector_resident']:,.0f} / "
                         f"{r['bytes_per_vector_allocated']:,.0f} | {r['cold_start_seconds']} | "
                         f"{measured(r)} |")
        for target in TARGETS:
            lines += [f"\nrecall@10 on fragments >= {target} (semsearch: tuned to it on other "
                      "fragments):\n",
                      "| system | setting | recall@10 fragments (claims; all) | p50 ms | p99 ms | "
                      "batch QPS |", "|---|---|---|---|---|---|"]
            for r in (r for r in results if r["n"] == n):
                s = at_target(r, target)
                if s is None:
                    lines.append(f"| {r['system']} | never reached | | | | |")
                    continue
                knob = PEERS[r["system"]].knob if r["system"] in PEERS else None
                knobs = {knob: s[knob]} if knob else s["params"]
                lines.append(f"| {r['system']} | {knobs} | {s['recall@10_fragments']} "
                             f"({s['recall@10_claims']}; {s['recall@10']}) | "
                             f"{s['p50_ms']} | {s['p99_ms']} | {s['batch_qps']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--all-sizes", action="store_true",
                        help="every system at every size (LARGEST lists the ones left out)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every system this many times, taking turns, and report "
                             "the median timings")
    parser.add_argument("--run", help=argparse.SUPPRESS)     # SYSTEM:N, in a child process
    args = arguments(parser)
    if args.rounds < 1:
        parser.error("--rounds takes 1 or more")
    if args.run:
        name, n, *step = args.run.split(":")
        if int(n) > LARGEST.get(name, int(n)) and not args.all_sizes:
            raise SystemExit(f"{name} is measured up to {LARGEST[name]:,} vectors")
        if step:
            return reopened(name, int(n), step[0], int(step[1]))
        result = run_semsearch(int(n)) if name == "semsearch" else run_peer(name, int(n))
        print("RESULT " + json.dumps(result), flush=True)
        return
    require("usearch", "hnswlib", "chromadb", "lancedb", "txtai", "matplotlib")
    sizes = [int(s) for s in args.sizes.split(",")]
    systems = args.systems.split(",")
    started = time.perf_counter()
    prepare(sizes)
    rounds: dict[tuple[str, int], list[dict]] = {}
    for round_number, n, name in ((r, n, name) for r in range(args.rounds) for n in sizes
                                  for name in systems):
        if n > LARGEST.get(name, n) and not args.all_sizes:
            continue
        if args.rounds > 1:
            print(f"round {round_number + 1} of {args.rounds}: {name} at {n:,}", flush=True)
        load_before = round(os.getloadavg()[0], 2)  # the 1-minute load: was it quiet?
        child = subprocess.Popen([sys.executable, __file__, "--run", f"{name}:{n}",
                                  *(["--all-sizes"] if args.all_sizes else [])],
                                 stdout=subprocess.PIPE, text=True, cwd=HERE)
        found = None
        for line in child.stdout:
            if line.startswith("RESULT "):
                found = json.loads(line[len("RESULT "):])
            else:
                print(line, end="", flush=True)
        if child.wait() or found is None:
            print(f"{name} at {n}: failed (exit {child.returncode})", flush=True)
            continue
        found["measured"] = {"on": time.strftime("%Y-%m-%d"), "load_before": load_before,
                             "load_after": round(os.getloadavg()[0], 2)}
        rounds.setdefault((name, n), []).append(found)
        shutil.rmtree(WORK / f"{name}-{n}", ignore_errors=True)
    results = [median_of_rounds(runs) for runs in rounds.values()]
    name = "peers" if set(sizes) <= {100_000, 1_000_000} else \
        "peers-" + "-".join(str(n) for n in sizes)
    path = args.results / f"{name}.json"
    seconds = round(time.perf_counter() - started, 1)
    if path.exists():  # a run of some systems replaces theirs and keeps the others'
        fresh = {(r["system"], r["n"]) for r in results}
        kept = [r for r in json.loads(path.read_text())["results"]
                if (r["system"], r["n"]) not in fresh]
        results = sorted(kept + results, key=lambda r: (r["n"], SYSTEMS.index(r["system"])))
    report = {"machine": f"{os.cpu_count()} cores", "sizes": sizes, "targets": TARGETS,
              "queries": json.loads((WORK / "queries.json").read_text()),
              "seconds_of_last_run": seconds, "results": results}
    path.write_text(json.dumps(report, indent=2) + "\n")
    (args.results / f"{name}.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
