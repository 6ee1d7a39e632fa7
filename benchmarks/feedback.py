"""Relevance feedback on Cranfield: `like` given two relevant papers, against query search.

    python benchmarks/feedback.py

For every Cranfield test query with at least 4 relevant judged documents (171 of them), two
are picked at random and given to `like` as the papers liked; every method then
ranks the collection and is scored without those two (left out of rankings and judgments).
Plain query search runs the same queries under the same rule. Repeated for 4 random picks
(seeds 0-3), since which two are given moves the figures by a few points. Writes
benchmarks/results/feedback.json and prints a Markdown table (copied into README.md).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from semsearch.evaluation import load_collection, relevance_feedback

from _common import arguments, eval_engine  # noqa: E402  (beside this file)

HERE = Path(__file__).resolve().parent
CRANFIELD = HERE.parents[1] / "shared" / "eval" / "cranfield"


SEEDS = (0, 1, 2, 3)


def main() -> None:
    args = arguments(description=__doc__.splitlines()[0])
    collection = load_collection(CRANFIELD, "test")
    engine = eval_engine(collection)
    started = time.perf_counter()
    runs = {}
    for seed in SEEDS:
        runs[seed] = relevance_feedback(engine, collection, seed=seed)
        print(f"seed {seed}: " + ", ".join(f"{r.mode} {r.metrics['ndcg@10']:.4f}"
                                           for r in runs[seed]), flush=True)
    seconds = time.perf_counter() - started
    names = [r.mode for r in runs[SEEDS[0]]]
    table = {name: {"queries": runs[SEEDS[0]][i].queries,
                    "ndcg@10_by_seed": [round(runs[s][i].metrics["ndcg@10"], 4) for s in SEEDS],
                    "mean": {metric: round(statistics.mean(runs[s][i].metrics[metric]
                                                           for s in SEEDS), 4)
                             for metric in runs[SEEDS[0]][i].metrics}}
             for i, name in enumerate(names)}
    out = {"collection": "cranfield", "split": "test", "positives_given": 2, "seeds": SEEDS,
           "seconds": round(seconds, 1), "results": table}
    (args.results / "feedback.json").write_text(json.dumps(out, indent=2) + "\n")
    print("| ranking | queries | nDCG@10 (mean of 4) | by seed | recall@100 | MRR@10 |")
    print("|---|---|---|---|---|---|")
    for name, row in table.items():
        mean = row["mean"]
        print(f"| {name} | {row['queries']} | {mean['ndcg@10']:.4f} | "
              f"{' / '.join(f'{v:.3f}' for v in row['ndcg@10_by_seed'])} | "
              f"{mean['recall@100']:.4f} | {mean['mrr@10']:.4f} |")


if __name__ == "__main__":
    main()
