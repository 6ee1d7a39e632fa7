"""Tune BM25 and fusion settings on SciFact *train* judgments; nothing here looks at test.

    python benchmarks/tune_quality.py [--collection ../shared/eval/scifact]

Writes benchmarks/results/tuning.json: every setting tried with its train nDCG@10, and the
chosen ones (which become the defaults in semsearch/lexical.py and semsearch/fusion.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from semsearch import Engine, FusionSettings, LexicalSettings
from semsearch.evaluation import load_collection, score_rankings
from semsearch.search.fusion import fuse

from _common import arguments, eval_engine  # noqa: E402  (beside this file)

HERE = Path(__file__).resolve().parent
DEPTH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default=str(HERE.parents[1] / "shared/eval/scifact"))
    args = arguments(parser)
    started = time.perf_counter()
    train = load_collection(args.collection, "train")
    scratch = Path(tempfile.mkdtemp(prefix="tune-"))
    try:
        # a copy: each BM25 setting re-indexes the texts, the cached index stays as it is
        engine = Engine.open(shutil.copytree(eval_engine(train).path, scratch / "index"))
        tune(train, engine, started, args.results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def tune(train, engine: Engine, started: float, results: Path) -> None:
    ids = list(engine.ids())
    number = {doc_id: position for position, doc_id in enumerate(ids)}
    query_ids = list(train.qrels)
    texts = [train.queries[q] for q in query_ids]

    def ranked(mode: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        found = engine.search_many(texts, k=DEPTH, mode=mode)
        return {q: (np.array([h.score for h in hits], dtype=np.float32),
                    np.array([number[h.id] for h in hits], dtype=np.int64))
                for q, hits in zip(query_ids, found)}

    def ndcg(rankings: dict[str, np.ndarray]) -> float:
        run = {q: [ids[int(r)] for r in rows[:100]] for q, rows in rankings.items()}
        return score_rankings(run, train.qrels)["ndcg@10"]

    def lexical_runs(settings: LexicalSettings) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        engine.rebuild(lexical=settings)
        return ranked("lexical")

    dense = ranked("dense")
    trials = {"dense": ndcg({q: rows for q, (_, rows) in dense.items()}), "bm25": [], "fusion": []}
    grid = itertools.product([0.6, 0.9, 1.2, 1.5, 2.0], [0.3, 0.4, 0.5, 0.75, 0.9],
                             [("english", "en"), (None, "en"), ("english", None)])
    best_lexical, best_score, lexical = None, -1.0, None
    for k1, b, (stemmer, stopwords) in grid:
        settings = LexicalSettings(k1=k1, b=b, stemmer=stemmer, stopwords=stopwords)
        runs = lexical_runs(settings)
        score = ndcg({q: rows for q, (_, rows) in runs.items()})
        trials["bm25"].append({**asdict(settings), "ndcg@10": round(score, 4)})
        if score > best_score:
            best_lexical, best_score, lexical = settings, score, runs
    print(f"BM25 best on train: {best_lexical} nDCG@10 {best_score:.4f}")

    candidates = [FusionSettings(method="rrf", rrf_k=k, depth=d)
                  for k, d in itertools.product([5, 10, 20, 40, 60, 100], [50, 100, 200])]
    candidates += [FusionSettings(method="score", dense_weight=w, depth=d)
                   for w, d in itertools.product([0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [50, 100, 200])]
    best_fusion, best_fused = None, -1.0
    for settings in candidates:
        fused = {}
        for q in train.qrels:
            d, l = dense[q], lexical[q]
            ranked = fuse((d[0][:settings.depth], d[1][:settings.depth]),
                          (l[0][:settings.depth], l[1][:settings.depth]), settings)
            fused[q] = np.array([row for row, _ in ranked])
        score = ndcg(fused)
        trials["fusion"].append({**asdict(settings), "ndcg@10": round(score, 4)})
        if score > best_fused:
            best_fusion, best_fused = settings, score
    print(f"fusion best on train: {best_fusion} nDCG@10 {best_fused:.4f}")
    by_method = {m: max((t for t in trials["fusion"] if t["method"] == m),
                        key=lambda t: t["ndcg@10"]) for m in ("rrf", "score")}
    result = {
        "collection": train.name, "split": "train", "queries": len(train.qrels),
        "dense_ndcg@10": round(trials["dense"], 4),
        "chosen": {"lexical": asdict(best_lexical), "lexical_ndcg@10": round(best_score, 4),
                   "fusion": asdict(best_fusion), "fusion_ndcg@10": round(best_fused, 4)},
        "best_per_fusion_method": by_method,
        "seconds": round(time.perf_counter() - started, 1),
        "trials": trials,
    }
    out = results / "tuning.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
