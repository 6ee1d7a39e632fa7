"""The search path on CPU: every index type at 10k, 100k and 1M vectors of dimension 384.

    python benchmarks/search_path.py            # the whole benchmark (about 10 minutes here)
    python benchmarks/search_path.py --quick    # 10k and 100k only, fewer settings (CI-friendly)

Measures, per size and index type: build time, bytes per vector, and for each search setting
recall@10 against exact search, single-query latency p50/p99 (1 thread) and batch QPS. Also
warm end-to-end query latency (embed + search + fetch titles) on the largest index, and cold
one-shot CLI latency (a fresh process, 100k-document index built from precomputed vectors).

Data. Documents: the 5,183 SciFact abstracts embedded by all-MiniLM-L6-v2, then synthetic
vectors shaped like them: a real document vector plus Gaussian noise with the real vectors'
own covariance (scaled so the synthetic vector keeps a cosine of about 0.7 with its seed),
normalised. So the synthetic set has the real embeddings' anisotropy and their topical
clustering. (Isotropic random vectors, by contrast, have no neighbourhoods for an index to
find and make every approximate index look far worse than on real embeddings.) Queries: SciFact's 1,109 claims embedded as queries (real short texts, which sit
farther from every document than documents do from each other; document-like queries would
make recall look better than users will see it).

The machine is shared and its speed drifts by a third or more over minutes, so each run also
records a reference: a fixed matrix product (one FFN layer of the model over 256 word pieces)
timed for a second at the start and right before the end-to-end measurement. About 1.6 ms
is this machine quiet; a run whose reference is far above that ran on a busy machine.

Writes benchmarks/results/search_path.json, search_path.md and search_path.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from semsearch import ann
from semsearch.documents import Document
from semsearch.engine import EMBED_BATCH, Engine
from semsearch.store import FolderFiles
from semsearch.evaluation import load_collection

from _common import eval_engine, require  # noqa: E402  (beside this file)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "eval"
DIMENSION = 384
IVF_GRID = [{"nprobe": p, "rerank_factor": r} for p, r in
            ((4, 10), (8, 10), (16, 10), (32, 10), (32, 20), (64, 10), (64, 20), (128, 10),
             (128, 20), (192, 20), (256, 20), (512, 20))]
SEED_COSINE = 0.7


def machine_reference_ms(seconds: float = 1.0) -> float:
    """Median time of a fixed matrix product over ``seconds``: how busy the machine is now."""
    rng = np.random.default_rng(0)
    left = rng.random((256, DIMENSION), dtype=np.float32)
    right = rng.random((DIMENSION, 4 * DIMENSION), dtype=np.float32)
    times, until = [], time.perf_counter() + seconds
    while time.perf_counter() < until:
        started = time.perf_counter()
        left @ right
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    """SciFact documents (from the evaluation cache) and SciFact claims, both embedded."""
    collection = load_collection(SHARED / "scifact", "test")
    engine = eval_engine(collection)
    documents = np.stack([engine.vectors.vector(row) for batch in
                          engine.documents.batches(EMBED_BATCH) for row, _ in batch])
    queries = engine.query_embedder.embed_queries(claim_texts())
    return documents.astype(np.float32), queries.astype(np.float32)


def claim_texts() -> list[str]:
    """SciFact's 1,109 claims, the model of a query."""
    return [json.loads(line)["text"] for line in
            (SHARED / "scifact" / "queries.jsonl").read_text().splitlines()]


def synthetic_documents(real: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` vectors: the real ones first, then real seeds moved by covariance-shaped noise."""
    rng = np.random.default_rng(seed)
    if count <= len(real):
        return real[:count].copy()
    centred = real - real.mean(axis=0)
    covariance = centred.T @ centred / len(real)
    root = np.linalg.cholesky(covariance + 1e-6 * np.eye(DIMENSION)).astype(np.float32)
    # the noise's expected norm, to scale it to the cosine wanted
    noise_norm = float(np.sqrt(np.trace(covariance)))
    scale = np.sqrt(1 / SEED_COSINE**2 - 1) / noise_norm
    out = np.empty((count, DIMENSION), dtype=np.float32)
    out[:len(real)] = real
    for start in range(len(real), count, 100_000):
        stop = min(count, start + 100_000)
        seeds = real[rng.integers(0, len(real), stop - start)]
        noise = rng.standard_normal((stop - start, DIMENSION), dtype=np.float32) @ root.T
        block = seeds + scale * noise
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latencies(index, queries: np.ndarray, k: int = 10) -> list[float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        index.search(query, k)
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure_setting(index, params, queries, truth, single_queries) -> dict:
    import faiss

    index.set_search_params(params)
    found = index.search(queries, 10)[1]
    recall = ann.recall_at(found, truth)
    times = latencies(index, single_queries)  # one query at a time runs on one thread
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    index.search(queries, 10)
    qps = len(queries) / (time.perf_counter() - started)
    return {"params": index.search_params(), "recall@10": round(recall, 4),
            "p50_ms": round(statistics.median(times), 4),
            "p99_ms": round(float(np.percentile(times, 99)), 4), "batch_qps": round(qps, 1)}


def folder_bytes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}


def bench_size(n: int, documents: np.ndarray, queries: np.ndarray, kinds: list[str],
               grids: dict[str, list[dict]], work: Path) -> list[dict]:
    rows = np.arange(1, n + 1, dtype=np.int64)
    vectors = documents[:n]
    truth = ann.exact_top(vectors, rows, queries, 10)
    results = []
    for kind in kinds:
        started = time.perf_counter()
        index, tuning = ann.build_index(kind, rows, vectors)
        build_seconds = time.perf_counter() - started
        folder = work / f"{kind}-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        index.save(folder)
        files = folder_bytes(folder)
        index = ann.load_index(kind, FolderFiles(folder), tuning.params)
        in_memory = files.get(ann.INDEX_FILE, 0)
        single = queries if kind != "exact" or n <= 100_000 else queries[:200]
        settings = [measure_setting(index, params, queries, truth, single)
                    for params in (grids.get(kind) or [{}])]
        tuned = measure_setting(index, tuning.params, queries, truth, single)
        results.append({
            "n": n, "type": kind, "build_seconds": round(build_seconds, 1),
            "bytes_per_vector_in_memory": round(in_memory / n, 1),
            "bytes_per_vector_on_disk": round(sum(files.values()) / n, 1),
            "build_tuning": {"params": tuning.params, "recall@10_query_like": tuning.recall_at_10},
            "at_build_tuned_params_real_queries": tuned,
            "settings": settings,
        })
        print(json.dumps({k: v for k, v in results[-1].items() if k != "settings"}), flush=True)
        for setting in settings:
            print("   ", json.dumps(setting), flush=True)
        del index
        shutil.rmtree(folder)
    return results


def engine_latency(n: int, documents: np.ndarray, claims: list[str], work: Path,
                   cold_runs: int = 5) -> dict:
    """Warm end-to-end in this process, and cold one-shot CLI queries in fresh processes."""
    location = work / f"engine-{n}"
    started = time.perf_counter()
    build_synthetic_engine(location, documents[:n])
    build_seconds = time.perf_counter() - started
    engine = Engine.open(location, bf16_queries=True)  # the fastest query path there is
    result = {"n": n, "machine_reference_ms": machine_reference_ms(),
              "index_type": engine.info().index_type,
              "query_runtime": engine.query_embedder.query_runtime,
              "build_seconds_from_vectors": round(build_seconds, 1)}
    # Each measurement uses claims not searched before in this process, so no query finds its
    # own lists and rows already in the CPU caches.
    startup, first, served = claims[:20], claims[20:220], claims[220:620]
    warm = {"dense": claims[620:820], "hybrid": claims[820:970]}
    parts = claims[970:]
    for claim in startup:  # the model and SQLite loaded
        engine.search(claim, k=10, mode="dense")
    times = _search_times(engine, first, "dense")
    # Right after opening, most queries still fault in pages of the memory-mapped vectors.
    result["first_dense_p50_ms"] = round(statistics.median(times), 2)
    for claim in served:  # a process that has served some hundreds of queries
        engine.search(claim, k=10, mode="dense")
    for mode in ("dense", "hybrid"):
        times = _search_times(engine, warm[mode], mode)
        result[f"warm_{mode}_p50_ms"] = round(statistics.median(times), 2)
        result[f"warm_{mode}_p99_ms"] = round(float(np.percentile(times, 99)), 2)
    # Where a dense query's time goes: embedding it, then searching and fetching the hits.
    embed, rest = [], []
    for claim in parts:
        started = time.perf_counter()
        vector = engine.query_embedder.embed_queries([claim])[0]
        embedded = time.perf_counter()
        engine.search_vector(vector, k=10)
        embed.append((embedded - started) * 1000)
        rest.append((time.perf_counter() - embedded) * 1000)
    result["warm_dense_embed_p50_ms"] = round(statistics.median(embed), 2)
    result["warm_dense_search_and_fetch_p50_ms"] = round(statistics.median(rest), 2)
    cold = []
    for claim in claims[:cold_runs]:
        started = time.perf_counter()
        subprocess.run(["semsearch", "search", claim, "--index", str(location)], check=True,
                       capture_output=True)
        cold.append(time.perf_counter() - started)
    result["cold_cli_seconds"] = [round(t, 3) for t in cold]
    result["cold_cli_median_seconds"] = round(statistics.median(cold), 3)
    engine.close()
    shutil.rmtree(location)
    return result


def build_synthetic_engine(location: Path, vectors: np.ndarray) -> None:
    """An index of the given vectors, one placeholder paper each (no model runs)."""
    papers = (Document(id=f"doc-{i}", title=f"Synthetic paper {i}",
                       abstract=f"Abstract of synthetic paper number {i}.")
              for i in range(len(vectors)))
    Engine(location).build(papers, vectors=vectors)


def _search_times(engine: Engine, claims: list[str], mode: str) -> list[float]:
    """Milliseconds per query, searching the claims one at a time."""
    times = []
    for claim in claims:
        started = time.perf_counter()
        engine.search(claim, k=10, mode=mode)
        times.append((time.perf_counter() - started) * 1000)
    return times


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in results})
    figure, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4), squeeze=False)
    for axis, n in zip(axes[0], sizes):
        for r in (r for r in results if r["n"] == n):
            points = sorted((s["p50_ms"], s["recall@10"]) for s in r["settings"])
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=r["type"])
        axis.set_xscale("log")
        axis.set_title(f"{n:,} vectors, SciFact claims as queries")
        axis.set_xlabel("single-query p50 latency, ms (1 thread, log)")
        axis.set_ylabel("recall@10 vs exact")
        axis.axhline(0.95, color="grey", linewidth=0.5)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def table(results: list[dict], end_to_end: dict | None) -> str:
    lines = ["| N | type | build s | bytes/vector in memory (on disk) | setting | recall@10 | "
             "p50 ms | p99 ms | batch QPS |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for s in r["settings"]:
            setting = ", ".join(f"{k}={v}" for k, v in s["params"].items()
                                if k in ("efSearch", "nprobe", "rerank_factor")) or "—"
            lines.append(f"| {r['n']:,} | {r['type']} | {r['build_seconds']} | "
                         f"{r['bytes_per_vector_in_memory']:.0f} ({r['bytes_per_vector_on_disk']:.0f}) | "
                         f"{setting} | {s['recall@10']:.3f} | {s['p50_ms']:.3f} | "
                         f"{s['p99_ms']:.3f} | {s['batch_qps']:.0f} |")
    if end_to_end:
        lines += ["", f"End to end on a {end_to_end['n']:,}-document index "
                      f"({end_to_end['index_type']}, queries embedded by "
                      f"{end_to_end['query_runtime']}): warm dense query p50 "
                      f"{end_to_end['warm_dense_p50_ms']} ms (p99 {end_to_end['warm_dense_p99_ms']}; "
                      f"of which embedding the query {end_to_end['warm_dense_embed_p50_ms']} ms, "
                      f"search and fetch {end_to_end['warm_dense_search_and_fetch_p50_ms']} ms), "
                      f"warm hybrid p50 {end_to_end['warm_hybrid_p50_ms']} ms. The first 200 "
                      f"queries after opening it: dense p50 {end_to_end['first_dense_p50_ms']} ms "
                      "(pages of the memory-mapped vectors still faulting in). The machine's "
                      f"reference product took {end_to_end['machine_reference_ms']} ms just "
                      "before (about 1.6 ms on a quiet machine)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k, fewer settings")
    parser.add_argument("--sizes", default=None, help="comma-separated sizes, e.g. 10000,1000000")
    parser.add_argument("--hnsw-max", type=int, default=1_000_000,
                        help="largest size to build HNSW at (its build is slow on 2 cores)")
    args = parser.parse_args()
    require("matplotlib")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else \
        ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    grids = {"hnsw": [{"efSearch": e} for e in ((16, 64, 256) if args.quick else
                                                  (16, 32, 48, 64, 96, 128, 256))],
             "ivf": IVF_GRID[2::3] if args.quick else IVF_GRID}
    started = time.perf_counter()
    reference_at_start = machine_reference_ms()
    real, queries = real_vectors()
    claims = claim_texts()
    documents = synthetic_documents(real, max(sizes))
    results, cold = [], None
    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as scratch:
        work = Path(scratch)
        for n in sizes:
            kinds = ["exact", "ivf"] + (["hnsw"] if n <= args.hnsw_max else [])
            results += bench_size(n, documents, queries, kinds, grids, work)
        end_to_end = engine_latency(max(sizes), documents, claims, work)
        print(json.dumps(end_to_end), flush=True)
        if max(sizes) != 100_000 and 100_000 in sizes:
            cold = engine_latency(100_000, documents, claims, work)
            print(json.dumps(cold), flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    name = "search_path_quick" if args.quick else "search_path"
    report = {"machine": f"{os.cpu_count()} cores",
              "machine_reference_ms_at_start": reference_at_start, "dimension": DIMENSION,
              "queries": "SciFact claims (1,109), embedded by the ONNX query path",
              "documents": f"5,183 SciFact abstracts + synthetic (seed cosine {SEED_COSINE})",
              "sizes": sizes, "hnsw_built_up_to": args.hnsw_max, "results": results,
              "end_to_end": end_to_end, "cold_cli_100k": cold or end_to_end,
              "seconds": round(time.perf_counter() - started, 1)}
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(table(results, end_to_end) + "\n")
    plot(results, out / f"{name}.png")
    print(f"wrote {out / name}.json/.md/.png in {report['seconds']} s")


if __name__ == "__main__":
    main()
