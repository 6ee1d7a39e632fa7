"""Query embedding in fp32 (onnxruntime) against bf16 (OpenVINO), end to end, measured A/B.

    python benchmarks/query_ab.py                 # on a 1M-vector index (about 3 minutes)
    python benchmarks/query_ab.py --n 100000

This machine is shared, and one full benchmark run can differ from the next by a
third; a difference of 15% needs both sides measured at the same moments. So each variant runs
in its own process with the same index open and warmed up on the same 400 claims, and the
processes then take turns serving blocks of 25 new claims (who goes first alternates). Reports
each variant's p50 over all its queries, and the median over blocks of its block p50 divided
by the first variant's. Writes benchmarks/results/query_ab.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import arguments, build_synthetic_engine, claim_texts, real_vectors, synthetic_documents

HERE = Path(__file__).resolve().parent
VARIANTS = {"fp32": False, "bf16": True}  # name: Engine(bf16_queries=...)
WARM_UP, BLOCK = 400, 25


def serve(variant: str, location: str) -> None:
    """Worker: warm up, then answer "start end" lines with that block's times in ms."""
    from semsearch.engine import Engine

    engine = Engine.open(location, bf16_queries=VARIANTS[variant])
    texts = claim_texts()
    for text in texts[:WARM_UP]:
        engine.search(text, k=10, mode="dense")
    print(engine.query_embedder.query_runtime, flush=True)
    for line in sys.stdin:
        start, end = map(int, line.split())
        times = []
        for text in texts[start:end]:
            started = time.perf_counter()
            engine.search(text, k=10, mode="dense")
            times.append((time.perf_counter() - started) * 1000)
        print(json.dumps(times), flush=True)


def build(n: int, folder: Path) -> Path:
    documents, _ = real_vectors()
    location = folder / f"engine-{n}"
    build_synthetic_engine(location, synthetic_documents(documents, n))
    return location


def compare(location: Path, rounds: int) -> dict:
    workers = {name: subprocess.Popen([sys.executable, __file__, "--serve", name, str(location)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for name in VARIANTS}
    runtimes = {name: worker.stdout.readline().strip() for name, worker in workers.items()}
    times = {name: [] for name in VARIANTS}
    block_p50s = {name: [] for name in VARIANTS}
    total = len(claim_texts())
    for _ in range(rounds):
        for block, start in enumerate(range(WARM_UP, total, BLOCK)):
            order = list(VARIANTS) if block % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                workers[name].stdin.write(f"{start} {min(start + BLOCK, total)}\n")
                workers[name].stdin.flush()
                block_times = json.loads(workers[name].stdout.readline())
                times[name] += block_times
                block_p50s[name].append(statistics.median(block_times))
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    first = next(iter(VARIANTS))
    return {name: {"query_runtime": runtimes[name], "queries": len(times[name]),
                   "p50_ms": round(statistics.median(times[name]), 3),
                   "ratio_to_" + first: round(statistics.median(
                       a / b for a, b in zip(block_p50s[name], block_p50s[first])), 3)}
            for name in VARIANTS}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the index")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the claims")
    args = arguments(parser)
    work = Path(tempfile.mkdtemp(prefix="semsearch-ab-"))
    try:
        started = time.perf_counter()
        location = build(args.n, work)
        result = {"n": args.n, "warm_up_claims": WARM_UP, "block": BLOCK,
                  "variants": compare(location, args.rounds)}
        result["seconds"] = round(time.perf_counter() - started, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    (args.results / "query_ab.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
