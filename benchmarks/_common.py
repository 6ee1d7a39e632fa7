"""What the benchmarks share: where the test collections are, where their results go, where
scratch indexes go (a cache outside the source tree, reused between runs), and a check for
the optional packages a benchmark needs (`pip install -e ".[bench]"`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from semsearch import config
from semsearch.evaluation import Collection, cached_engine, load_collection

HERE = Path(__file__).resolve().parent
#: the committed results the READMEs show: written only when asked (--results there)
COMMITTED = HERE / "results"
SHARED = HERE.parents[1] / "shared" / "eval"
#: indexes of the test collections and other scratch indexes: never in the source tree
SCRATCH = config.cache_root() / "benchmarks"


def arguments(parser: argparse.ArgumentParser | None = None,
              description: str = "") -> argparse.Namespace:
    """The script's arguments, with ``--results DIR``: where its results are written, by
    default a scratch folder, so that a run never overwrites the committed results unless
    asked to (``--results benchmarks/results``)."""
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument("--results", type=Path, default=SCRATCH / "results", metavar="DIR",
                        help=f"where to write the results (default: {SCRATCH / 'results'}; "
                             f"{COMMITTED} holds the committed ones)")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    print(f"results go to {args.results}", file=sys.stderr, flush=True)
    return args


def sizes(text: str) -> list[int]:
    """`--sizes 200000,1000000`: collection sizes, a 0 left out (`--sizes 0`: none)."""
    return [int(x) for x in text.split(",") if int(x)]


def eval_engine(collection: Collection, **options):
    """The collection's evaluation index, kept under SCRATCH."""
    return cached_engine(collection, root=SCRATCH, **options)


def require(*modules: str) -> None:
    """Stop at once, saying how to get them, if optional packages are missing (rather than
    after minutes of work)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"this benchmark needs {', '.join(missing)}: pip install -e \".[bench]\"")


DIMENSION = 384
#: a synthetic vector's cosine to the real one it is made from
SEED_COSINE = 0.7


def claim_texts() -> list[str]:
    """SciFact's 1,109 claims, the model of a query."""
    return [json.loads(line)["text"] for line in
            (SHARED / "scifact" / "queries.jsonl").read_text().splitlines()]


def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    """SciFact documents (from the evaluation index) and SciFact claims, both embedded."""
    engine = eval_engine(load_collection(SHARED / "scifact", "test"))
    documents = engine.vectors(list(engine.ids()))
    queries = engine.query_embedder.embed_queries(claim_texts())
    return documents.astype(np.float32), queries.astype(np.float32)


def synthetic_documents(real: np.ndarray, count: int, seed: int = 0,
                        out: np.ndarray | None = None) -> np.ndarray:
    """``count`` vectors: the real ones first, then real seeds moved by covariance-shaped
    noise (keeping the real embeddings' anisotropy and topical clusters; isotropic random
    vectors have no neighbourhoods and make every approximate index look far worse).
    Written into ``out`` if given (a memory-mapped file, for more than fit in memory)."""
    rng = np.random.default_rng(seed)
    if count <= len(real):
        if out is not None:
            out[:] = real[:count]
            return out
        return real[:count].copy()
    centred = real - real.mean(axis=0)
    covariance = centred.T @ centred / len(real)
    root = np.linalg.cholesky(covariance + 1e-6 * np.eye(DIMENSION)).astype(np.float32)
    # the noise's expected norm, to scale it to the cosine wanted
    noise_norm = float(np.sqrt(np.trace(covariance)))
    scale = np.sqrt(1 / SEED_COSINE**2 - 1) / noise_norm
    out = np.empty((count, DIMENSION), dtype=np.float32) if out is None else out
    out[:len(real)] = real
    for start in range(len(real), count, 100_000):
        stop = min(count, start + 100_000)
        seeds = real[rng.integers(0, len(real), stop - start)]
        noise = rng.standard_normal((stop - start, DIMENSION), dtype=np.float32) @ root.T
        block = seeds + scale * noise
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build_synthetic_engine(location: Path, vectors: np.ndarray, **options) -> None:
    """An index of the given vectors, one placeholder paper each (no model runs)."""
    from semsearch import Document, Engine

    papers = (Document(id=f"doc-{i}", title=f"Synthetic paper {i}",
                       abstract=f"Abstract of synthetic paper number {i}.")
              for i in range(len(vectors)))
    Engine(location).build(papers, vectors=vectors, **options)


def fresh_runs(script: str, option: str, value: object, runs: int) -> list[dict]:
    """``runs`` full runs of one measurement, each in a fresh process (so each has its own
    peak memory and its own first, cold steps): ``script option value`` prints the run's row
    as JSON on its last line."""
    import subprocess

    rows = []
    for run in range(runs):
        done = subprocess.run([sys.executable, script, option, str(value)], check=True,
                              stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"run {run + 1} of {runs}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    return rows


def median_row(rows: list[dict]) -> dict:
    """Several runs' rows as one: each number the median of the runs' (each run's under
    "by run"), anything else as the first run has it."""
    import statistics

    merged: dict = {"runs": len(rows)}
    by_run: dict = {}
    for name, value in rows[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [row[name] for row in rows]
            merged[name] = statistics.median(values)
            if len(set(values)) > 1:
                by_run[name] = values
        else:
            merged[name] = value
    if len(rows) > 1:
        merged["by run"] = by_run
    return merged
