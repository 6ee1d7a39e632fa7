"""Reading the arXiv metadata snapshot at scale: parse, validate and deduplicate, no embedding.

    python benchmarks/parse.py [--records 1000000]

Writes that many records in the snapshot's real schema (id, submitter, authors, title,
comments, journal-ref, doi, report-no, categories, license, abstract, versions, update_date,
authors_parsed) to a temporary file, titles and abstracts assembled from SciFact's sentences,
with 1% of records repeated to give the deduplication work. Then times
`semsearch index FILE --format arxiv --dry-run` in a fresh process and reads its peak memory.
Writes benchmarks/results/parse.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from _common import arguments  # noqa: E402  (beside this file)

HERE = Path(__file__).resolve().parent
SCIFACT = HERE.parents[1] / "shared" / "eval" / "scifact" / "corpus.jsonl"


def write_snapshot(path: Path, count: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    sentences, titles = [], []
    for line in SCIFACT.read_text().splitlines():
        record = json.loads(line)
        titles.append(record["title"])
        sentences.extend(s.strip() + "." for s in record["text"].split(". ") if len(s) > 40)
    categories = ["cs.CL", "cs.IR", "cs.LG", "q-bio.GN", "physics.bio-ph", "stat.ML", "hep-ph"]
    written = 0
    with path.open("w") as handle:
        previous = None
        for i in range(count):
            if previous is not None and rng.random() < 0.01:
                handle.write(previous)  # an exact repeat, as in merged dumps
                written += 1
                continue
            year = rng.randint(2007, 2025)
            first, last = rng.choice(["Ada", "Alan", "Grace", "Kurt"]), rng.choice(["Smith", "Ng", "Li"])
            record = {
                "id": f"{year % 100:02d}{rng.randint(1, 12):02d}.{i:05d}", "submitter": f"{first} {last}",
                "authors": f"{first} {last}, B. Author and C. Writer",
                "title": f"{rng.choice(titles)} ({i})", "comments": "12 pages", "journal-ref": None,
                "doi": None, "report-no": None,
                "categories": " ".join(rng.sample(categories, rng.randint(1, 3))), "license": None,
                "abstract": "  " + " ".join(rng.sample(sentences, 6)) + "\n",
                "versions": [{"version": "v1", "created": f"Mon, 2 Apr {year} 19:18:42 GMT"}],
                "update_date": f"{year}-05-01",
                "authors_parsed": [[last, first, ""], ["Author", "B.", ""], ["Writer", "C.", ""]],
            }
            previous = json.dumps(record) + "\n"
            handle.write(previous)
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = arguments(parser)
    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as scratch:
        path = Path(scratch) / "arxiv-metadata-oai-snapshot.json"
        started = time.perf_counter()
        records = write_snapshot(path, args.records)
        generate_seconds = time.perf_counter() - started
        size = path.stat().st_size
        started = time.perf_counter()
        result = subprocess.run(["semsearch", "index", str(path), "--format", "arxiv",
                                 "--dry-run", "--json"], check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(result.stdout.splitlines()[-1])
    out = {"records": records, "file_bytes": size, "generate_seconds": round(generate_seconds, 1),
           "wall_seconds": round(seconds, 1), "records_per_second": round(records / seconds),
           "peak_memory_mib": round(peak_kib / 1024, 1), "report": report}
    (args.results / "parse.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
