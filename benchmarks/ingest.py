"""Ingest speed and the search-quality cost of the int8 model.

    python benchmarks/ingest.py

Embeds the same 1,000 SciFact abstracts with sentence-transformers (fp32, the reference),
onnxruntime fp32 and onnxruntime int8 (dynamic, per-channel quantisation), on this machine's
cores, and reports documents per second and cosine to the reference. Then indexes all of
SciFact with the int8 model and scores SciFact test (queries still embedded by the fp32 query
path), beside the fp32 index. Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from semsearch import Engine, read_documents
from semsearch.embedding import OnnxEmbedder, SentenceTransformerEmbedder
from semsearch.evaluation import evaluate, load_collection

from _common import SCRATCH, arguments, eval_engine  # noqa: E402  (beside this file)

HERE = Path(__file__).resolve().parent
SCIFACT = HERE.parents[1] / "shared" / "eval" / "scifact"
SAMPLE = 1000


def main() -> None:
    args = arguments(description=__doc__.splitlines()[0])
    texts = [doc.text for doc in read_documents([SCIFACT / "corpus.jsonl"])][:SAMPLE]
    backends = {"sentence-transformers fp32": SentenceTransformerEmbedder(),
                "onnxruntime fp32": OnnxEmbedder(), "onnxruntime int8": OnnxEmbedder(quantized=True)}
    speed, reference = {}, None
    for name, embedder in backends.items():
        embedder.embed_documents(texts[:32])  # load and warm up
        started = time.perf_counter()
        vectors = embedder.embed_documents(texts)
        seconds = time.perf_counter() - started
        reference = vectors if reference is None else reference
        cosine = np.sum(vectors * reference, axis=1)
        speed[name] = {"docs_per_second": round(len(texts) / seconds, 1),
                       "cosine_to_reference_mean": round(float(cosine.mean()), 5),
                       "cosine_to_reference_min": round(float(cosine.min()), 5)}
        print(name, speed[name], flush=True)

    collection = load_collection(SCIFACT, "test")
    # Queries in fp32 for both, so the difference is the documents' model alone.
    fp32 = eval_engine(collection)
    int8 = Engine(SCRATCH / "int8-scifact", quantized=True)
    started = time.perf_counter()
    int8.build(read_documents([SCIFACT / "corpus.jsonl"]))
    build_seconds = time.perf_counter() - started
    quality = {}
    for mode in ("dense", "hybrid"):
        quality[mode] = {"fp32": round(evaluate(fp32, collection, mode).metrics["ndcg@10"], 4),
                         "int8": round(evaluate(int8, collection, mode).metrics["ndcg@10"], 4)}
        quality[mode]["cost"] = round(quality[mode]["fp32"] - quality[mode]["int8"], 4)
        print(mode, quality[mode], flush=True)
    import shutil

    shutil.rmtree(int8.folder.path)
    result = {"sample_docs": len(texts), "speed": speed,
              "int8_scifact_build_seconds": round(build_seconds, 1),
              "int8_scifact_build_docs_per_second": round(5183 / build_seconds, 1),
              "scifact_test_ndcg@10": quality}
    (args.results / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
