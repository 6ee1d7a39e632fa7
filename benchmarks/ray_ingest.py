"""What embedding through Ray costs against embedding here: the same build (all 5,183 of
SciFact's abstracts, fp32, the bundled model) locally on every core, and with `--ray` on a
local Ray instance with 1 actor of 2 threads and 2 actors of 1 thread, on this 2-core machine.
Ray's overhead is the difference at the same thread count (target: within 15%). A build of 20
papers each way gives its fixed part (starting the Ray instance, the actors and their models),
which a larger build pays once; the per-actor rate gives a projection, stated as one, for a
cluster of N machines.

    python benchmarks/ray_ingest.py            # three rounds, the settings taking turns

Each build runs in a process of its own, so every one pays for its own start (the model, and
for Ray its instance). Writes results/ray_ingest.json and .md.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import SHARED, arguments, require

ROUNDS = 3
PAPERS = 5_183   # all of SciFact
FEW = 20         # a build that is almost all fixed cost
LOCAL = "local, 2 threads"
SETTINGS = {LOCAL: None, "ray, 1 actor x 2 threads": (1, 2), "ray, 2 actors x 1 thread": (2, 1)}
#: what the projection is for
ARXIV, PUBMED = 2_500_000, 36_000_000

BUILD = """
import json, sys, time
from semsearch import Engine, RaySettings, read_documents
folder, corpus, actors, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ray = RaySettings(actors=actors, threads=threads) if actors else None
started = time.perf_counter()
report = Engine(folder, ray=ray).build(read_documents([corpus]))
print(json.dumps({"seconds": time.perf_counter() - started, "indexed": report.indexed}))
"""


def one_build(corpus: Path, setting: tuple[int, int] | None) -> dict:
    folder = Path(tempfile.mkdtemp()) / "index"
    actors, threads = setting or (0, 0)
    try:
        done = subprocess.run([sys.executable, "-c", BUILD, str(folder), str(corpus),
                               str(actors), str(threads)], capture_output=True, text=True,
                              check=True)
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = arguments(description=__doc__.splitlines()[0])
    require("ray")
    lines = (SHARED / "scifact" / "corpus.jsonl").read_text().splitlines()[:PAPERS]
    scratch = Path(tempfile.mkdtemp())
    corpus, few = scratch / "corpus.jsonl", scratch / "few.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    few.write_text("\n".join(lines[:FEW]) + "\n")
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    fixed: list[float] = []
    indexed = 0
    for round_number in range(ROUNDS):
        for name, setting in SETTINGS.items():
            result = one_build(corpus, setting)
            indexed = result["indexed"]
            seconds[name].append(result["seconds"])
            print(f"round {round_number + 1}: {name}: {result['seconds']:.1f} s", flush=True)
        fixed.append(one_build(few, SETTINGS["ray, 1 actor x 2 threads"])["seconds"]
                     - one_build(few, None)["seconds"])
        print(f"round {round_number + 1}: Ray's fixed cost: {fixed[-1]:.1f} s", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    median = {name: statistics.median(times) for name, times in seconds.items()}
    local = median[LOCAL]
    start = statistics.median(fixed)
    rows = {name: {"build_seconds_median": round(median[name], 1),
                   "runs": [round(t, 1) for t in seconds[name]],
                   "papers_per_s": round(indexed / median[name], 1),
                   "over_local": round(median[name] / local - 1, 3),
                   "over_local_without_fixed_cost": round(
                       (median[name] - (0 if name == LOCAL else start)) / local - 1, 3)}
            for name in SETTINGS}
    # one core's worth, via Ray, once started (a cluster's build pays its start once)
    per_actor = indexed / (median["ray, 2 actors x 1 thread"] - start) / 2
    projection = {f"{machines} machines x 8 cores": {
        "papers_per_s": round(per_actor * 8 * machines),
        "arXiv 2.5M hours": round(ARXIV / (per_actor * 8 * machines) / 3600, 1),
        "PubMed 36M hours": round(PUBMED / (per_actor * 8 * machines) / 3600, 1)}
        for machines in (1, 10, 50)}
    report = {"machine": f"{os.cpu_count()} cores", "papers": indexed, "rounds": ROUNDS,
              "settings": rows,
              "ray_fixed_cost_seconds": {"median": round(start, 1),
                                         "runs": [round(f, 1) for f in fixed]},
              "per_actor_thread_papers_per_s": round(per_actor, 1),
              "projection (not measured: per-actor rate x cores, assuming reading and "
              "the index on the driver keep up)": projection}
    (args.results / "ray_ingest.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"| build of {indexed:,} SciFact papers | median s | papers/s | over local | "
             "over local, fixed cost taken out |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['build_seconds_median']} | {r['papers_per_s']} | "
              f"{r['over_local']:+.1%} | {r['over_local_without_fixed_cost']:+.1%} |"
              for name, r in rows.items()]
    lines += ["", f"Ray's fixed cost a build (a {FEW}-paper build through Ray less one here, "
                  f"median): {start:.1f} s"]
    lines += ["", f"Projection (not measured): {per_actor:.1f} papers/s an actor thread; "
                  "machines of 8 cores:", "",
              "| machines | papers/s | arXiv 2.5M | PubMed 36M |", "|---|---|---|---|"]
    lines += [f"| {name.split()[0]} | {p['papers_per_s']:,} | {p['arXiv 2.5M hours']} h | "
              f"{p['PubMed 36M hours']} h |" for name, p in projection.items()]
    (args.results / "ray_ingest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
