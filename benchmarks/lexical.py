"""BM25 at 200k and 1M papers beside tantivy's, and the hybrid query it feeds: warm, one
process, the same texts and queries.

The papers are scale.py's: SciFact's 5,183 abstracts, then synthetic ones (a SciFact title and
five sentences drawn from the whole corpus, so real vocabulary and lengths), with vectors made
from SciFact's (no embedding); the index is scale.py's base index of that size, built once
under the scratch folder. The queries are SciFact's 300 test claims. Measured, queries taking
turns, in three rounds; a run's figure is the median of its rounds' p50s, and the figure
reported the median of three full runs (each opening the index afresh):

- semsearch `lexical` top 10 and top 200 (Engine.search: tokenizing, BM25, fetching the hits),
  and the same with every posting scored (the pruning switched off: what it was before);
- semsearch `hybrid` top 10 (the default query: query embedding, both sides' top 200, fusion;
  with every posting scored it cost the lexical difference more, so that is not re-measured);
- tantivy's BM25 top 200 over the same texts (title and abstract in one field, its English
  stemmer; the query's words OR-ed, as BM25 reads them), the peer.

    python benchmarks/lexical.py                       # 200k and 1M (builds them once)
    python benchmarks/lexical.py --sizes 200000        # one size
    python benchmarks/lexical.py --runs 1              # one full run a size
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _common import SCRATCH, SHARED, arguments, require, sizes

SIZES = (200_000, 1_000_000)
ROUNDS = 3
RUNS = 3
#: the targets (issue 34), at 1M: lexical p50 at most tantivy's; hybrid p50 in ms
HYBRID_TARGET_MS = 20.0


def queries() -> list[str]:
    from semsearch.evaluation import load_collection

    collection = load_collection(SHARED / "scifact", "test")
    return [collection.queries[query] for query in collection.qrels]  # the 300 judged


def tantivy_index(size: int, engine) -> Path:
    """The same papers in a tantivy index (one field, English stemming), built once."""
    import tantivy

    folder = SCRATCH / "lexical" / f"tantivy-{size}"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
    builder.add_integer_field("row", stored=True, indexed=False, fast=True)
    index = tantivy.Index(builder.build(), path=str(folder))
    writer = index.writer(heap_size=500_000_000, num_threads=2)
    started = time.perf_counter()
    ids = list(engine.ids())
    for at in range(0, len(ids), 10_000):
        papers = engine.papers(ids[at:at + 10_000])
        for offset, paper_id in enumerate(ids[at:at + 10_000]):
            paper = papers[paper_id]
            writer.add_document(tantivy.Document(text=f"{paper.title} {paper.abstract}",
                                                 row=at + offset))
        print(f"tantivy {size:,}: {at + 10_000:,} papers", file=sys.stderr, flush=True)
    writer.commit()
    writer.wait_merging_threads()
    (folder / "done").write_text(f"{time.perf_counter() - started:.0f} s\n")
    return folder


def tantivy_searcher(folder: Path):
    import tantivy

    index = tantivy.Index.open(str(folder))
    index.reload()
    searcher = index.searcher()

    def search(text: str, k: int = 200):
        words = " ".join(re.findall(r"\w+", text))
        query = index.parse_query(words, ["text"])
        return searcher.search(query, k).hits
    return search


def exhaustive():
    """The pruning switched off: every posting of every query term scored (as before)."""
    from semsearch.index import lexical

    def every_posting(part, terms, k, settings, average):
        totals = np.zeros(part.count, np.float64)
        lengths = part.postings.lengths
        norm = settings.k1 * (1 - settings.b) + settings.k1 * settings.b * lengths / average
        for weight, term in terms:
            docs, freqs = part.postings.postings(term)
            tf = freqs.astype(np.float64)
            totals[docs] += weight * tf / (tf + norm[docs])
        if part.allowed is not None:
            totals[~part.allowed] = 0
        seen = np.flatnonzero(totals > 0)
        best = np.lexsort((seen, -totals[seen]))[:k]
        return totals[seen][best].astype(np.float32), seen[best]
    return every_posting


def measure(size: int, texts: list[str]) -> dict:
    from semsearch import Engine
    from semsearch.index import lexical
    from scale import base_index, scifact

    documents, real = scifact()
    folder = base_index(size, documents, real)
    engine = Engine.open(folder)
    tantivy_search = tantivy_searcher(tantivy_index(size, engine))
    pruned, every = lexical._best_of_part, exhaustive()

    def with_scoring(scoring, call):
        def run(text):
            lexical._best_of_part = scoring
            try:
                return call(text)
            finally:
                lexical._best_of_part = pruned
        return run

    runs = {
        "semsearch lexical top 10": lambda text: engine.search(text, k=10, mode="lexical"),
        "semsearch lexical top 200": lambda text: engine.search(text, k=200, mode="lexical"),
        "semsearch lexical top 10, every posting scored": with_scoring(
            every, lambda text: engine.search(text, k=10, mode="lexical")),
        "semsearch hybrid top 10": lambda text: engine.search(text, k=10),
        "tantivy BM25 top 200": tantivy_search,
    }
    # the same answers pruned or not: the top 200 of every query, in order, and their scores
    for text in texts:
        fast = [(hit.id, hit.score) for hit in runs["semsearch lexical top 200"](text)]
        slow = [(hit.id, hit.score) for hit in with_scoring(
            every, lambda text: engine.search(text, k=200, mode="lexical"))(text)]
        if [paper for paper, _ in fast] != [paper for paper, _ in slow] or not np.allclose(
                [score for _, score in fast], [score for _, score in slow], rtol=1e-6):
            raise SystemExit(f"pruned and exhaustive BM25 disagree on {text!r}")
    for run in runs.values():  # warm: pages read, the model loaded
        for text in texts[:30]:
            run(text)
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(ROUNDS):
        times: dict[str, list[float]] = {name: [] for name in runs}
        for text in texts:
            for name, run in runs.items():
                started = time.perf_counter()
                run(text)
                times[name].append((time.perf_counter() - started) * 1000)
        for name, each in times.items():
            rounds[name].append(statistics.median(each))
        print(f"{size:,} round {round_number + 1}: " + ", ".join(
            f"{name} {rounds[name][-1]:.2f} ms" for name in runs), file=sys.stderr, flush=True)
    engine.close()
    return {"papers": size, "queries": len(texts), "rounds": ROUNDS,
            "p50 ms": {name: round(statistics.median(each), 2) for name, each in rounds.items()},
            "p50 ms by round": {name: [round(x, 2) for x in each]
                                for name, each in rounds.items()}}


def markdown(results: list[dict]) -> str:
    names = list(results[0]["p50 ms"])
    lines = ["| warm p50, ms | " + " | ".join(f"{r['papers']:,} papers" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{r['p50 ms'][name]:.2f}" for r in results)
                     + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=list(SIZES))
    parser.add_argument("--runs", type=int, default=RUNS,
                        help="full runs a size (the figure is their median)")
    args = arguments(parser)
    require("tantivy")
    texts = queries()
    results = []
    for size in args.sizes:  # written after each size: a long run keeps what it measured
        runs = [measure(size, texts) for _ in range(args.runs)]
        results.append({**runs[0], "runs": args.runs,
                        "p50 ms": {name: round(statistics.median(run["p50 ms"][name]
                                                                 for run in runs), 2)
                                   for name in runs[0]["p50 ms"]},
                        "p50 ms by run": {name: [run["p50 ms"][name] for run in runs]
                                          for name in runs[0]["p50 ms"]},
                        "p50 ms by round": [run["p50 ms by round"] for run in runs]})
        report = {"results": results, "hybrid target ms at 1M": HYBRID_TARGET_MS,
                  "measured": time.strftime("%Y-%m-%d %H:%M")}
        (args.results / "lexical.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.results / "lexical.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
