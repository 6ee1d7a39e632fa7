"""Do passage windows help on long abstracts? Measured on SciFact train and Cranfield test.

The model reads at most 256 word pieces, and most SciFact abstracts are longer. This embeds the
rest of each long document as extra windows (254 word pieces, stride 128; the first window is
exactly the truncated text the index already holds) and scores a document by
  - max: its best window (max pooling over passages), or
  - mean: the normalised mean of its window vectors (one vector per document),
against the single truncated vector. Dense search only, exact, brute force.

    python benchmarks/passages.py      # writes benchmarks/results/passages.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from semsearch.embedding import OnnxEmbedder, bundled_model_path
from semsearch.evaluation import load_collection, score_rankings

from _common import arguments, eval_engine  # noqa: E402  (beside this file)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "eval"
WINDOW, STRIDE = 254, 128


def windows_of(text: str, tokenizer) -> list[str]:
    """Texts of the windows after the first (which the index already embeds)."""
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    starts = range(STRIDE, max(len(ids) - WINDOW, 0) + STRIDE, STRIDE) if len(ids) > WINDOW else []
    return [tokenizer.decode(ids[s:s + WINDOW]) for s in starts]


def measure(name: str, split: str) -> dict:
    from tokenizers import Tokenizer

    collection = load_collection(SHARED / name, split)
    engine = eval_engine(collection)
    tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    ids = list(engine.ids())
    first = engine.vectors(ids)
    owner, extra_texts = [], []
    for position, doc_id in enumerate(ids):
        for window in windows_of(engine.get(doc_id).text, tokenizer):
            owner.append(position)
            extra_texts.append(window)
    started = time.perf_counter()
    extra = OnnxEmbedder().embed_documents(extra_texts) if extra_texts else np.zeros((0, 384))
    embed_seconds = time.perf_counter() - started
    passages = np.concatenate([first, extra])
    passage_owner = np.concatenate([np.arange(len(ids)), np.array(owner, dtype=np.int64)])
    mean = np.zeros_like(first)
    np.add.at(mean, passage_owner, passages)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)

    query_ids = list(collection.qrels)
    queries = engine.query_embedder.embed_queries([collection.queries[q] for q in query_ids])
    runs = {"truncated": {}, "max": {}, "mean": {}}
    for q, vector in zip(query_ids, queries):
        best = np.full(len(ids), -np.inf, dtype=np.float32)
        np.maximum.at(best, passage_owner, passages @ vector)
        for method, scores in (("truncated", first @ vector), ("max", best), ("mean", mean @ vector)):
            top = np.argsort(-scores)[:100]
            runs[method][q] = [ids[i] for i in top]
    return {"collection": name, "split": split, "documents": len(ids),
            "extra_windows": len(extra_texts), "embed_seconds": round(embed_seconds, 1),
            "ndcg@10": {m: round(score_rankings(r, collection.qrels)["ndcg@10"], 4)
                        for m, r in runs.items()}}


def main() -> None:
    args = arguments(description=__doc__.splitlines()[0])
    results = [measure("scifact", "train"), measure("cranfield", "test")]
    for result in results:
        print(result)
    out = args.results / "passages.json"
    out.write_text(json.dumps({"window": WINDOW, "stride": STRIDE, "results": results},
                              indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
