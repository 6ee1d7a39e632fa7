"""Retrieval quality: BM25, dense and hybrid on SciFact test and Cranfield, beside published figures.

    python benchmarks/quality.py

Writes benchmarks/results/quality.json and the table between the quality markers in
benchmarks/README.md. Each figure is also printed by
`semsearch eval ../shared/eval/<collection> --mode <mode>`. Settings were tuned on SciFact train
only (benchmarks/tune_quality.py); these are test figures.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from pathlib import Path

from semsearch import FusionSettings, LexicalSettings
from semsearch.evaluation import evaluate, load_collection

from _common import COMMITTED, arguments, eval_engine  # noqa: E402  (beside this file)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "eval"
MODES = ("lexical", "dense", "hybrid")
#: published nDCG@10 (see ../shared/eval/README.md); None where there is none to cite
PUBLISHED = {
    "scifact": {"lexical": "0.665 (BEIR, Elasticsearch) / 0.679 (Anserini)",
                "dense": "0.645 (MTEB, all-MiniLM-L6-v2)", "hybrid": None},
    "cranfield": {"lexical": None, "dense": None, "hybrid": None},
}


def main() -> None:
    args = arguments(description=__doc__.splitlines()[0])
    rows = []
    for name in ("scifact", "cranfield"):
        collection = load_collection(SHARED / name, "test")
        engine = eval_engine(collection)
        for mode in MODES:
            started = time.perf_counter()
            result = evaluate(engine, collection, mode)
            rows.append({**result.to_json(), "seconds": round(time.perf_counter() - started, 1),
                         "published_ndcg@10": PUBLISHED[name][mode],
                         "command": f"semsearch eval ../shared/eval/{name} --mode {mode}"})
            print(json.dumps(rows[-1]))
    results = {"model": "all-MiniLM-L6-v2", "search": "exact",
               "lexical_settings": asdict(LexicalSettings()),
               "fusion_settings": asdict(FusionSettings()), "results": rows}
    (args.results / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.results.resolve() == COMMITTED.resolve():  # the README shows the committed ones
        write_table(rows)


def write_table(rows: list[dict]) -> None:
    by = {(r["collection"], r["mode"]): r for r in rows}
    lines = ["| collection (split) | BM25 | dense | hybrid | published |",
             "|---|---|---|---|---|"]
    for name in ("scifact", "cranfield"):
        cells = [f"{by[(name, m)]['ndcg@10']:.3f}" for m in MODES]
        cited = "; ".join(f"{m}: {PUBLISHED[name][m]}" for m in MODES if PUBLISHED[name][m])
        lines.append(f"| {name} (test, {by[(name, 'dense')]['queries']} queries) | "
                     + " | ".join(cells) + f" | {cited or '—'} |")
    lines += ["", "recall@100: " + "; ".join(
        f"{name} " + ", ".join(f"{m} {by[(name, m)]['recall@100']:.3f}" for m in MODES)
        for name in ("scifact", "cranfield"))]
    readme = HERE / "README.md"
    text = readme.read_text()
    table = "\n".join(lines)
    readme.write_text(re.sub(r"(<!-- quality:start -->\n).*?(<!-- quality:end -->)",
                             lambda m: m.group(1) + table + "\n" + m.group(2), text, flags=re.S))


if __name__ == "__main__":
    main()
