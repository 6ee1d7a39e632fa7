"""The map of a collection: how well its regions agree with real labels, how still it stays,
and what it costs at 1M papers.

- Regions against labels (adjusted mutual information): CiteULike's 16,980 titles, each
  paper labelled by its one tag among the 30 most used (papers with none or several of them
  left out); beside k-means on the raw vectors with as many clusters as the map has regions,
  and as many as there are labels. SciFact's papers carry no labels: there, the map's regions
  are compared with k-means on the raw vectors (agreement, not correctness). The issue also
  asks for an arXiv sample's categories: no arXiv texts with categories are on this machine
  (the sample pages carry none), so that row is missing.
- Stability (SciFact): a map fitted on 90% of the papers, the other 10% added with `add`:
  how far any old point moved and whether every label was kept; then `map --rebuild`: how
  many papers changed region (each old region matched to the new one most of its papers went
  to).
- At 1M (scale.py's base index, vectors precomputed; a copy, since fitting writes): the fit's
  time and the process's peak memory; reading the map; placing 1,000 papers added since; the
  page's Map view opening, and panning: the moved picture a drag shows, and the full drawing
  on release (Chromium, against `semsearch serve` in a thread).

The figures at 1M are the median of three full runs, each in a fresh process.

    python benchmarks/map.py                   # all of it
    python benchmarks/map.py --sizes 0         # quality and stability only
    python benchmarks/map.py --runs 1          # one run at 1M
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SCRATCH, SHARED, arguments, fresh_runs, median_row, sizes

SIZES = (1_000_000,)
RUNS = 3
TOP_TAGS = 30
#: the targets (issue 35), at 1M
FIT_TARGET_S, FIT_TARGET_GB, PLACE_TARGET_S, OPEN_TARGET_S = 900, 4.0, 5.0, 2.0


def kmeans_labels(vectors: np.ndarray, count: int) -> np.ndarray:
    import faiss

    kmeans = faiss.Kmeans(vectors.shape[1], count, niter=20, seed=1, spherical=True,
                          min_points_per_centroid=1)
    kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return kmeans.index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)[1][:, 0]


def copied(source: Path, scratch: Path) -> Path:
    """A copy of an index to write to: its segment files (never changed once written)
    linked, everything else copied."""
    target = scratch / source.name

    def link_or_copy(from_path: str, to_path: str) -> None:
        if "/segments/" in from_path:
            os.link(from_path, to_path)
        else:
            shutil.copy2(from_path, to_path)

    shutil.copytree(source, target, copy_function=link_or_copy)
    return target


def citeulike(scratch: Path) -> dict:
    from semsearch import Engine, read_documents
    from sklearn.metrics import adjusted_mutual_info_score

    source = SCRATCH / "citeulike"
    if not (source / "CURRENT").exists():
        Engine(source).build(read_documents([SHARED / "citeulike" / "corpus.jsonl"], "beir"))
    engine = Engine.open(copied(source, scratch))
    tags = [json.loads(line) for line in
            (SHARED / "citeulike" / "tags.jsonl").read_text().splitlines()]
    top = sorted(tags, key=lambda tag: -len(tag["papers"]))[:TOP_TAGS]
    label: dict[str, str | None] = {}
    for tag in top:
        for paper in tag["papers"]:
            label[paper] = tag["tag"] if paper not in label else None
    started = time.perf_counter()
    found = engine.map()
    seconds = time.perf_counter() - started
    keep = [at for at, paper in enumerate(found.ids) if label.get(paper)]
    truth = [label[found.ids[at]] for at in keep]
    vectors = engine.vectors([found.ids[at] for at in keep])
    regions = len(found.regions)
    row = {"papers": len(found.ids), "labelled": len(keep), "labels": TOP_TAGS,
           "regions": regions, "fit seconds": round(seconds, 1),
           "AMI map regions": round(adjusted_mutual_info_score(
               truth, found.point_regions[keep]), 4),
           f"AMI k-means raw vectors, k={regions}": round(adjusted_mutual_info_score(
               truth, kmeans_labels(vectors, regions)), 4),
           f"AMI k-means raw vectors, k={TOP_TAGS}": round(adjusted_mutual_info_score(
               truth, kmeans_labels(vectors, TOP_TAGS)), 4)}
    engine.close()
    return row


def scifact_stability(scratch: Path) -> dict:
    from semsearch import Engine
    from sklearn.metrics import adjusted_mutual_info_score
    from scale import scifact

    documents, vectors = scifact()
    cut = int(len(documents) * 0.9)
    engine = Engine(scratch / "scifact-90")
    engine.build(iter(documents[:cut]), vectors=vectors[:cut])
    before = engine.map()
    engine.add(documents[cut:])
    after = engine.map()
    old = {doc_id: at for at, doc_id in enumerate(before.ids)}
    moved = max((float(np.abs(after.places[at] - before.places[old[doc_id]]).max())
                 for at, doc_id in enumerate(after.ids) if doc_id in old), default=0.0)
    kept = [r.label for r in after.regions] == [r.label for r in before.regions]
    time.sleep(1.1)
    refit = engine.map(rebuild=True)
    new_of = dict(zip(refit.ids, refit.point_regions.tolist()))
    pairs = [(region, new_of[doc_id]) for doc_id, region in
             zip(after.ids, after.point_regions.tolist())]
    matched = {}
    for region in set(r for r, _ in pairs):
        went = [n for r, n in pairs if r == region]
        matched[region] = max(set(went), key=went.count)
    changed = sum(matched[r] != n for r, n in pairs) / len(pairs)
    all_vectors = engine.vectors(after.ids)
    row = {"papers": len(after.ids), "added": len(documents) - cut,
           "largest move of an old point": moved, "every label kept": kept,
           "placed since the fit": after.placed_since,
           "share changing region after --rebuild": round(changed, 4),
           "AMI regions before and after --rebuild": round(adjusted_mutual_info_score(
               [r for r, _ in pairs], [n for _, n in pairs]), 4),
           "regions": len(after.regions),
           "AMI map regions vs k-means raw (no labels)": round(adjusted_mutual_info_score(
               after.point_regions, kmeans_labels(all_vectors, len(after.regions))), 4)}
    engine.close()
    return row


def at_scale(size: int, scratch: Path) -> dict:
    """Fit, read, place 1,000 more, then the page: each in this process, timed."""
    from semsearch import Engine, Document
    from scale import base_index, scifact, synthetic_texts

    documents, real = scifact()
    folder = copied(base_index(size, documents, real), scratch)
    engine = Engine.open(folder)
    started = time.perf_counter()
    engine.map()
    fit_seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    started = time.perf_counter()
    first = engine.map()
    read_seconds = time.perf_counter() - started
    extra = list(synthetic_texts(documents, 1000, seed=99, prefix="new"))
    engine.add(extra)
    started = time.perf_counter()
    after = engine.map()
    placed_read = time.perf_counter() - started
    assert after.placed_since == 1000 and len(after.ids) == len(first.ids) + 1000
    page = page_timings(folder)
    engine.close()
    return {"papers": size, "fit seconds": round(fit_seconds, 1),
            "peak resident GB (whole process, after the fit)": round(peak_gb, 2),
            "read seconds": round(read_seconds, 2),
            "read seconds with 1,000 placed": round(placed_read, 2),
            "placing 1,000 seconds (the difference)": round(max(placed_read - read_seconds,
                                                                 0), 2),
            **page, "targets": {"fit seconds": FIT_TARGET_S, "fit GB": FIT_TARGET_GB,
                                "placing seconds": PLACE_TARGET_S,
                                "page open seconds": OPEN_TARGET_S}}


def page_timings(folder: Path) -> dict:
    """The page's Map view on a live server: seconds from the click to the map drawn (three
    times, a fresh page each), and the milliseconds of a redraw while panning."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_page import CHROMIUM, DRIVER, LiveServer  # the tests' live server and browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from semsearch import Engine
    from semsearch.server import create_app

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--disable-gpu"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(DRIVER))
    opens, draws = [], []
    try:
        with LiveServer(create_app(Engine.open(folder))) as address:
            for _ in range(3):
                browser.get(address)
                started = time.perf_counter()
                browser.find_element("id", "map-button").click()
                deadline = time.monotonic() + 120
                while not browser.find_element("id", "status").text.startswith("The map of"):
                    assert time.monotonic() < deadline, browser.find_element("id",
                                                                             "status").text
                    time.sleep(0.02)
                opens.append(time.perf_counter() - started)
            for step in range(20):
                draws.append(browser.execute_script(
                    "return window.semsearchMap.pan(arguments[0], 7)", 13 if step % 2 else -13))
    finally:
        browser.quit()
    return {"page open seconds (median of 3)": round(statistics.median(opens), 2),
            "page open seconds": [round(x, 2) for x in opens],
            "pan: the moved picture, ms (median of 20)": round(statistics.median(
                d["movedMs"] for d in draws), 1),
            "pan: the full drawing after it, ms (median of 20)": round(statistics.median(
                d["drawnMs"] for d in draws), 1)}


def markdown(report: dict) -> str:
    lines = []
    if report.get("citeulike"):
        c = report["citeulike"]
        lines += ["| CiteULike, AMI with the 30 top tags | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in c.items()]
    if report.get("stability"):
        lines += ["", "| SciFact, stability | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in report["stability"].items()]
    for row in report.get("scale", []):
        lines += ["", f"| at {row['papers']:,} papers | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in row.items()
                  if name not in ("papers", "targets", "by run")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=list(SIZES))
    parser.add_argument("--runs", type=int, default=RUNS,
                        help="full runs at each size, each in a fresh process (the median)")
    parser.add_argument("--one-run", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    args = arguments(parser)
    if args.one_run:  # a run of fresh_runs: its row on the last line
        with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
            print(json.dumps(at_scale(args.one_run, Path(scratch))))
        return
    report: dict = {"measured": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        report["citeulike"] = citeulike(Path(scratch))
        print(json.dumps(report["citeulike"]), file=sys.stderr, flush=True)
        report["stability"] = scifact_stability(Path(scratch))
        print(json.dumps(report["stability"]), file=sys.stderr, flush=True)
        report["scale"] = []
        for size in args.sizes:
            report["scale"].append(median_row(fresh_runs(__file__, "--one-run", size,
                                                          args.runs)))
            print(json.dumps(report["scale"][-1]), file=sys.stderr, flush=True)
    (args.results / "map.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / "map.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
