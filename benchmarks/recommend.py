"""Recommendations for readers' tags on CiteULike, beside arxiv-sanity-lite's ranking; and how
fast recommend, the inbox and tagging are at a million papers.

    python benchmarks/recommend.py            # quality: readers and tags, P = 5 and 20 (~15 min)
    python benchmarks/recommend.py --speed    # speed at 1M papers (the index is built once)

Quality. `../shared/eval/citeulike` holds 16,980 papers (titles only) and real readers'
libraries and tags. For 200 readers (and 200 tags) with at least P + 1 papers, drawn with a
fixed seed, P of their papers are marked (tagged) and the rest of the collection is ranked;
the rest of the library (or tag) is what should come first: recall@50 and nDCG@10, averaged.
Ranked in the same run by: arxiv-sanity-lite's method (TF-IDF of 1-2-grams as its compute.py
makes them, a linear SVM with C=0.01 of the marked papers against all others, as its
serve.py), the marked papers' mean vector, today's `like` (more_like_these) and `recommend`.
The inbox's own case: for each reader, 80 "new" papers (up to 10 of the rest of the library,
the others from outside it) ranked among themselves, nDCG@10.

Speed. On a copy of scale.py's index of --size papers (real vocabulary, vectors made from
SciFact's): three tags of 50 papers each (a paper's 200 nearest, sampled), 200 new papers
added; recommend (k = 10), the inbox over the 200 new papers, and tagging one paper, warm,
--rounds times; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from semsearch import Engine, read_documents
from semsearch.documents import Document, normalise_text
from semsearch.reading import Reader

from _common import SCRATCH, SHARED, arguments  # noqa: E402  (beside this file)

CITEULIKE = SHARED / "citeulike"
READERS = 200
SEED = 0
MARKED = (5, 20)
NEW_PAPERS, NEW_RELEVANT = 80, 10
METHODS = ("arxiv-sanity-lite", "mean vector", "more_like_these", "recommend")
#: recall@50 ratios to arxiv-sanity-lite's the issue asks for, by P
TARGETS = {5: 1.8, 20: 1.6}


# -- the collection -----------------------------------------------------------------------------

class Collection:
    """CiteULike's papers as indexed (titles only), its readers' libraries and its tags, by
    position in the index; papers stored once under another id (the same title twice) are
    mapped to the one kept."""

    def __init__(self) -> None:
        path = SCRATCH / "citeulike"
        self.engine = Engine(path)
        if not self.engine.folder.exists():
            print("indexing CiteULike's 16,980 titles (once, a few minutes)", flush=True)
            self.engine.build(read_documents([CITEULIKE / "corpus.jsonl"], "beir"))
        self.ids = list(self.engine.ids())
        self.position = {paper: at for at, paper in enumerate(self.ids)}
        self.vectors = self.engine.vectors(self.ids)
        titles = {}
        for line in (CITEULIKE / "corpus.jsonl").read_text().splitlines():
            record = json.loads(line)
            titles[record["_id"]] = record["title"]
        kept = {normalise_text(titles[paper]): paper for paper in self.ids}
        self.kept = {paper: kept.get(normalise_text(title)) for paper, title in titles.items()}
        self.titles = [titles[paper] for paper in self.ids]
        self.readers = [json.loads(line)["library"]
                        for line in (CITEULIKE / "users.jsonl").read_text().splitlines()]
        self.tags = [json.loads(line)["papers"]
                     for line in (CITEULIKE / "tags.jsonl").read_text().splitlines()]

    def cases(self, groups: list[list[str]], marked: int,
              count: int) -> list[tuple[list[int], list[int]]]:
        """(marked positions, the rest) for ``count`` groups with at least marked + 1
        papers."""
        rng = random.Random(SEED)
        eligible = []
        for group in groups:
            papers = sorted({self.position[self.kept[p]] for p in group
                             if self.kept.get(p) in self.position})
            if len(papers) > marked:
                eligible.append(papers)
        rng.shuffle(eligible)
        cases = []
        for papers in eligible[:count]:
            chosen = rng.sample(papers, marked)
            cases.append((chosen, sorted(set(papers) - set(chosen))))
        return cases


# -- the rankings ----------------------------------------------------------------------------------

class SanityLite:
    """arxiv-sanity-lite's ranking, re-made from its description: TF-IDF features of 1-2-grams
    (its compute.py's settings, over titles here), a linear SVM of the marked papers against
    every other paper (its serve.py's), papers ranked by the SVM's decision value."""

    def __init__(self, texts: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode",
            lowercase=True, analyzer="word", stop_words="english",
            token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2),
            max_features=10000, norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True,
            max_df=0.5, min_df=5)
        self.features = vectorizer.fit_transform(texts).astype(np.float32)

    def scores(self, marked: list[int]) -> np.ndarray:
        from sklearn import svm

        labels = np.zeros(self.features.shape[0])
        labels[marked] = 1
        model = svm.LinearSVC(class_weight="balanced", max_iter=10000, tol=1e-6, C=0.01)
        return model.fit(self.features, labels).decision_function(self.features)


def ranked(collection: Collection, sanity: SanityLite, method: str, marked: list[int],
           scratch: Path) -> list[int]:
    """The top 50 positions (never a marked paper) by a method."""
    engine, ids = collection.engine, collection.ids
    if method == "arxiv-sanity-lite":
        scores = sanity.scores(marked)
        scores[marked] = -np.inf
        return np.argsort(-scores)[:50].tolist()
    if method == "mean vector":
        centre = collection.vectors[marked].mean(axis=0)
        hits = engine.search_vector(centre, k=50 + len(marked))
        found = [collection.position[hit.id] for hit in hits]
        return [at for at in found if at not in set(marked)][:50]
    if method == "more_like_these":
        return [collection.position[hit.id]
                for hit in engine.more_like_these([ids[at] for at in marked], k=50)]
    reader = Reader(engine, state=scratch / f"{time.monotonic_ns()}.sqlite")
    reader.tag([ids[at] for at in marked], "marked")
    return [collection.position[hit.id] for hit in reader.recommend(k=50)]


def recall_and_ndcg(top: list[int], relevant: list[int]) -> tuple[float, float]:
    wanted = set(relevant)
    recall = len(wanted & set(top[:50])) / len(wanted)
    gains = [1.0 if at in wanted else 0.0 for at in top[:10]]
    ideal = sum(1 / np.log2(i + 2) for i in range(min(10, len(wanted))))
    return recall, sum(g / np.log2(i + 2) for i, g in enumerate(gains)) / ideal


def inbox_order(collection: Collection, sanity: SanityLite, method: str, marked: list[int],
                new: list[int], scratch: Path) -> list[int]:
    """The new papers in the order a method ranks them."""
    if method == "arxiv-sanity-lite":
        scores = sanity.scores(marked)[new]
    elif method == "mean vector":
        scores = collection.vectors[new] @ collection.vectors[marked].mean(axis=0)
    else:
        reader = Reader(collection.engine, state=scratch / f"{time.monotonic_ns()}.sqlite")
        reader.tag([collection.ids[at] for at in marked], "marked")
        papers = [Document(collection.ids[at], collection.titles[at], "") for at in new]
        shown = reader.inbox(papers=papers, k=len(new), peek=True).hits
        order = {collection.position[hit.id]: rank for rank, hit in enumerate(shown)}
        return sorted(new, key=lambda at: order.get(at, len(new)))
    return [new[i] for i in np.argsort(-scores, kind="stable")]


def quality(readers: int) -> dict:
    collection = Collection()
    sanity = SanityLite(collection.titles)
    results: dict = {"readers": {}, "tags": {}, "inbox": {}}
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="semsearch-recommend-") as folder:
        scratch = Path(folder)
        for group_name, groups in (("readers", collection.readers),
                                   ("tags", collection.tags)):
            for marked in MARKED:
                cases = collection.cases(groups, marked, readers)
                figures = {}
                for method in METHODS:
                    started = time.perf_counter()
                    each = [recall_and_ndcg(ranked(collection, sanity, method, chosen, scratch),
                                            rest) for chosen, rest in cases]
                    figures[method] = {"recall@50": round(statistics.mean(r for r, _ in each), 4),
                                       "ndcg@10": round(statistics.mean(n for _, n in each), 4),
                                       "seconds": round(time.perf_counter() - started, 1)}
                    print(f"{group_name} P={marked} {method}: {figures[method]}", flush=True)
                results[group_name][str(marked)] = {"cases": len(cases), "methods": figures}
        for marked in MARKED:
            figures = {}
            cases = collection.cases(collection.readers, marked, readers)
            others = list(range(len(collection.ids)))
            draws = []
            for chosen, rest in cases:
                library = set(chosen) | set(rest)
                relevant = rng.sample(rest, min(NEW_RELEVANT, len(rest)))
                outside = []
                while len(outside) < NEW_PAPERS - len(relevant):
                    at = rng.choice(others)
                    if at not in library and at not in outside:
                        outside.append(at)
                new = relevant + outside
                rng.shuffle(new)
                draws.append((chosen, relevant, new))
            for method in ("arxiv-sanity-lite", "mean vector", "recommend"):
                started = time.perf_counter()
                scores = [recall_and_ndcg(inbox_order(collection, sanity, method, chosen, new,
                                                      scratch), relevant)[1]
                          for chosen, relevant, new in draws]
                figures[method] = {"ndcg@10": round(statistics.mean(scores), 4),
                                   "seconds": round(time.perf_counter() - started, 1)}
                print(f"inbox P={marked} {method}: {figures[method]}", flush=True)
            results["inbox"][str(marked)] = {"cases": len(draws), "new": NEW_PAPERS,
                                             "methods": figures}
    return results


# -- speed at a million papers ------------------------------------------------------------------

def speed(size: int, rounds: int) -> dict:
    """recommend (3 tags of 50 papers), the inbox over 200 new papers, and tagging a paper,
    warm, each timed ``rounds`` times; medians."""
    import shutil

    from scale import base_index, scifact

    location = SCRATCH / f"recommend-{size}"
    if not (location / "CURRENT").exists():
        print(f"copying scale.py's {size:,}-paper index (built once, from vectors)", flush=True)
        documents, real = scifact()
        base = base_index(size, documents, real)
        shutil.rmtree(location, ignore_errors=True)
        shutil.copytree(base, location)
    engine = Engine.open(location)
    with tempfile.TemporaryDirectory(prefix="semsearch-speed-") as folder:
        reader = Reader(engine, state=Path(folder) / "reader.sqlite")
        rng = np.random.default_rng(SEED)
        seeds = engine.sample(3, seed=1)
        for tag, seed in zip(("alpha", "beta", "gamma"), seeds):
            [hits] = engine.search_vectors(engine.vectors([seed]), k=200)
            reader.tag([hit.id for hit in rng.choice(hits, 50, replace=False)], tag)
        fresh = [Document(f"new-{size}-{i}", f"A new paper number {i} on topic {i % 17}",
                          f"Its abstract, about subject {i % 23} and method {i % 11}.")
                 for i in range(200)]
        if not engine.has(fresh[0].id):
            engine.add(fresh)
            engine.refresh()
        reader.inbox(peek=True)  # records the arrivals once; then every call is warm
        untagged = engine.sample(rounds, seed=2)  # papers of the old ones, tagged one a round
        times: dict[str, list[float]] = {"recommend, 3 tags of 50, k=10": [],
                                         "inbox, 200 new papers": [], "tag one paper": []}
        measured = ["alpha", "beta", "gamma"]  # not "delta", which grows a paper a round
        reader.recommend(measured, k=10)
        for round_number in range(rounds):
            started = time.perf_counter()
            reader.recommend(measured, k=10)
            times["recommend, 3 tags of 50, k=10"].append(time.perf_counter() - started)
            started = time.perf_counter()
            shown = reader.inbox(peek=True)  # the latest write's papers: the 200
            times["inbox, 200 new papers"].append(time.perf_counter() - started)
            started = time.perf_counter()
            reader.tag([untagged[round_number]], "delta")
            times["tag one paper"].append(time.perf_counter() - started)
            print(f"round {round_number + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s"
                                                          for k, v in times.items()), flush=True)
        assert shown.new == 200, shown.new
    return {"size": size, "rounds": rounds,
            "median_seconds": {k: round(statistics.median(v), 4) for k, v in times.items()},
            "each": {k: [round(x, 4) for x in v] for k, v in times.items()}}


def markdown(report: dict) -> str:
    lines = []
    if "quality" in report:
        quality = report["quality"]
        lines += ["| who | P | arxiv-sanity-lite | mean vector | more_like_these | recommend "
                  "| recommend / sanity (target) |", "|---|---|---|---|---|---|---|"]
        for group in ("readers", "tags"):
            for marked in map(str, MARKED):
                figures = quality[group][marked]["methods"]
                cells = [f"{figures[m]['recall@50']:.3f} / {figures[m]['ndcg@10']:.3f}"
                         for m in METHODS]
                ratio = figures["recommend"]["recall@50"] / figures["arxiv-sanity-lite"][
                    "recall@50"]
                lines.append(f"| {group} | {marked} | " + " | ".join(cells)
                             + f" | {ratio:.2f}x ({TARGETS[int(marked)]}x) |")
        lines += ["", "recall@50 / nDCG@10, "
                  f"{quality['readers']['5']['cases']} readers and "
                  f"{quality['tags']['5']['cases']} tags a row.", "",
                  "| inbox: 80 new papers | P | arxiv-sanity-lite | mean vector | recommend |",
                  "|---|---|---|---|---|"]
        for marked in map(str, MARKED):
            figures = quality["inbox"][marked]["methods"]
            lines.append(f"| nDCG@10 | {marked} | " + " | ".join(
                f"{figures[m]['ndcg@10']:.3f}" for m in ("arxiv-sanity-lite", "mean vector",
                                                         "recommend")) + " |")
    if "speed" in report:
        speed_report = report["speed"]
        lines += ["", f"| at {speed_report['size']:,} papers (median of "
                      f"{speed_report['rounds']}) | seconds |", "|---|---|"]
        lines += [f"| {name} | {value:.3f} |"
                  for name, value in speed_report["median_seconds"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="measure speed at --size papers")
    parser.add_argument("--quality", action="store_true", help="measure quality (default)")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readers", type=int, default=READERS,
                        help="readers (and tags) measured (fewer for a quick look)")
    args = arguments(parser)
    path = args.results / "recommend.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    if args.quality or not args.speed:
        report["quality"] = quality(args.readers)
    if args.speed:
        report["speed"] = speed(args.size, args.rounds)
    report["machine"] = f"{os.cpu_count()} cores"
    path.write_text(json.dumps(report, indent=2) + "\n")
    (args.results / "recommend.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
