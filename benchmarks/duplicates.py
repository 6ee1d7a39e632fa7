"""Near-duplicates: precision and recall on pairs planted among SciFact's papers, and the time
and memory of the whole scan at 1M papers.

Planted: 300 of SciFact's 5,183 papers get a second copy under another id, 100 of each kind:
the title reworded (its words shuffled around a colon, a function word dropped, a word
changed), the abstract shortened (its first half of sentences), typos (letters swapped or
dropped in the title and the abstract). The copies are embedded by the model; the originals
keep their vectors. A pair counts as found when both papers land in one group; every other
pair a group implies counts against precision (SciFact may hold a few real duplicates: they
are counted against it too, and listed).

The scan at 1M runs over scale.py's base index (vectors precomputed, real vocabulary).

The scan's figures are the median of three full runs, each in a fresh process.

    python benchmarks/duplicates.py                    # quality, then the 1M scan
    python benchmarks/duplicates.py --sizes 0          # quality only
    python benchmarks/duplicates.py --runs 1           # one scan a size
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import arguments, fresh_runs, median_row, sizes

THRESHOLDS = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97)
KINDS = ("title reworded", "abstract shortened", "typos")
PLANTED_EACH = 100
SIZES = (1_000_000,)
RUNS = 3
#: the targets (issue 35): the whole scan at 1M, in seconds
SCAN_TARGET_S = 600
SWAPS = {"effect": "impact", "effects": "impacts", "association": "relationship",
         "associated": "linked", "increases": "raises", "reduces": "lowers", "risk": "danger",
         "patients": "people", "role": "part", "study": "analysis", "analysis": "study",
         "in": "among", "and": "&"}


def reworded(title: str, rng: random.Random) -> str:
    if ":" in title:
        head, tail = title.split(":", 1)
        title = f"{tail.strip()}: {head.strip()}"
    words = title.split()
    for drop in ("the", "a", "of", "The", "A"):
        if drop in words and len(words) > 4:
            words.remove(drop)
            break
    changed = [SWAPS.get(word, word) for word in words]
    if changed == words and len(words) > 3:  # nothing to swap: two words trade places
        at = rng.randrange(len(words) - 1)
        changed[at], changed[at + 1] = changed[at + 1], changed[at]
    return " ".join(changed)


def shortened(abstract: str) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", abstract)
    return " ".join(sentences[:max(1, len(sentences) // 2)])


def with_typos(text: str, count: int, rng: random.Random) -> str:
    letters = list(text)
    for _ in range(count):
        at = rng.randrange(max(1, len(letters) - 1))
        if rng.random() < 0.5 and at + 1 < len(letters):
            letters[at], letters[at + 1] = letters[at + 1], letters[at]
        else:
            del letters[at]
    return "".join(letters)


def planted(documents, seed: int = 0):
    """(copies, {copy id: (original id, kind)})."""
    rng = random.Random(seed)
    usable = [d for d in documents if d.title and len(re.split(r"(?<=[.!?])\s+",
                                                                d.abstract)) >= 4]
    chosen = rng.sample(usable, PLANTED_EACH * len(KINDS))
    copies, truth = [], {}
    for number, original in enumerate(chosen):
        kind = KINDS[number // PLANTED_EACH]
        if kind == "title reworded":
            copy = replace(original, title=reworded(original.title, rng))
        elif kind == "abstract shortened":
            copy = replace(original, abstract=shortened(original.abstract))
        else:
            copy = replace(original, title=with_typos(original.title, 2, rng),
                           abstract=with_typos(original.abstract, 5, rng))
        copy = replace(copy, id=f"copy-{number}")
        copies.append(copy)
        truth[copy.id] = (original.id, kind)
    return copies, truth


def quality() -> dict:
    from semsearch import Engine
    from scale import scifact

    documents, vectors = scifact()
    copies, truth = planted(documents)
    with tempfile.TemporaryDirectory() as scratch:
        engine = Engine(Path(scratch) / "index")
        engine.build(iter(documents), vectors=vectors)
        engine.add(copies)
        rows = []
        for threshold in THRESHOLDS:
            started = time.perf_counter()
            groups = engine.duplicates(threshold)
            seconds = time.perf_counter() - started
            pairs = {(a, b) for group in groups for a in group.ids for b in group.ids if a < b}
            wanted = {tuple(sorted((copy, original))): kind
                      for copy, (original, kind) in truth.items()}
            found = pairs & set(wanted)
            row = {"threshold": threshold, "groups": len(groups), "pairs": len(pairs),
                   "precision": round(len(found) / max(len(pairs), 1), 4),
                   "recall": round(len(found) / len(wanted), 4),
                   "recall by kind": {kind: round(sum(1 for p in found if wanted[p] == kind)
                                                  / PLANTED_EACH, 4) for kind in KINDS},
                   "wrong pairs": sorted(pairs - set(wanted))[:10],
                   "seconds": round(seconds, 2)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        engine.close()
    return {"papers": len(documents) + len(copies), "planted": len(copies), "rows": rows}


def scan(size: int) -> dict:
    from semsearch import Engine
    from scale import base_index, scifact

    documents, real = scifact()
    engine = Engine.open(base_index(size, documents, real))
    last = [0.0]

    def progress(stage: str, done: int, total: int | None) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"{size:,}: {done:,} of {total:,} papers scanned", file=sys.stderr, flush=True)

    started = time.perf_counter()
    groups = engine.duplicates(progress=progress)
    seconds = time.perf_counter() - started
    engine.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"papers": size, "seconds": round(seconds, 1), "groups": len(groups),
            "peak resident MB (whole process)": round(peak),
            "target seconds": SCAN_TARGET_S}


def markdown(report: dict) -> str:
    lines = ["| threshold | precision | recall | " + " | ".join(KINDS) + " |",
             "|---|---|---|" + "---|" * len(KINDS)]
    for row in report["quality"]["rows"]:
        lines.append(f"| {row['threshold']} | {row['precision']:.3f} | {row['recall']:.3f} | "
                     + " | ".join(f"{row['recall by kind'][k]:.2f}" for k in KINDS) + " |")
    for found in report["scan"]:
        lines.append(f"\nThe scan at {found['papers']:,} papers: {found['seconds']:.0f} s "
                     f"(target {found['target seconds']} s), {found['groups']} groups, "
                     f"peak resident {found['peak resident MB (whole process)']} MB.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=list(SIZES))
    parser.add_argument("--runs", type=int, default=RUNS,
                        help="scans of each size, each in a fresh process (the median)")
    parser.add_argument("--one-run", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    args = arguments(parser)
    if args.one_run:  # a run of fresh_runs: its row on the last line
        print(json.dumps(scan(args.one_run)))
        return
    report = {"quality": quality(), "scan": [], "measured": time.strftime("%Y-%m-%d %H:%M")}
    for size in args.sizes:
        report["scan"].append(median_row(fresh_runs(__file__, "--one-run", size, args.runs)))
    (args.results / "duplicates.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / "duplicates.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
