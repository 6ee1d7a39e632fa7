"""What a daily write costs on a large index: add and remove through the real CLI, at 100k and
1M documents, against the figures measured before segments (the issue's baseline).

The documents: SciFact's 5,183 abstracts, then synthetic ones, each a SciFact title and five
sentences drawn from the whole corpus (so the vocabulary and lengths of real abstracts), with
vectors made from SciFact's own by covariance-shaped noise around a real seed
(_common.synthetic_documents), given to the build so that 1M papers need no hours of
embedding. The papers added by the measured commands are new synthetic ones, embedded by the
command as a user's would be.

Per size, on one copy of the built index, in this order (the daily workflow):
  cold one-shot `semsearch search` (hybrid and dense);
  add 10, add 1,000, remove 1, remove 1,000 (each a whole CLI command: wall time, peak RSS,
  bytes written); 16 more small writes (add 10 / remove 1 alternately) to make 20;
  disk size after the 20 writes against before; cold searches again; warm hybrid p50 before
  and after, in one process, the untouched base and the written copy taking turns.

    python benchmarks/scale.py            # 100k and 1M, three runs each (median reported)
    python benchmarks/scale.py --quick    # 100k only, one run

Whole builds (--builds): per size (100k, 1M, 3M), the library's build from texts and
precomputed vectors read from a .npy file (memory-mapped, as a user's would be), in a process
of its own: wall time and peak RSS (VmHWM: anonymous memory and the file pages it maps, so
the vectors it reads count too); then one-shot `semsearch search` on the built index, hybrid
and dense, five times each in three rounds (the median of the rounds' medians), the sizes
taking turns. Writes scale_build.json/md.

    python benchmarks/scale.py --builds                 # 100k, 1M and 3M, one build each
    python benchmarks/scale.py --builds --sizes 100000  # one size
    python benchmarks/scale.py --builds --again         # build again what was built before
    python benchmarks/scale.py --builds --again --sizes 1000000 --runs 3   # median of three
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SCRATCH, arguments, SHARED, claim_texts, eval_engine, synthetic_documents

WORK = SCRATCH / "scale"
HERE = Path(__file__).resolve().parent
WARM_QUERIES = 200
#: before segments, measured with the same library calls (issue 20)
BASELINE = {100_000: {"add 10 s": 31.6, "add 10 peak RSS MB": 1760, "remove 1 s": 23.4},
            1_000_000: {"add 10 s": 192.0, "add 10 peak RSS MB": 8900, "remove 1 s": 226.0,
                        "disk after one write GB": 9.3}}
#: the targets of issue 20, at 1M
TARGETS = {"add 10 s": 3.0, "remove 1 s": 1.5, "peak RSS MB": 600,
           "add 10 at 1M / at 100k": 1.5, "disk after 20 / before": 1.2,
           "warm hybrid p50 after / before": 1.15}

#: runs one CLI command as the `semsearch` command does (`semsearch.cli.run`) and, as it
#: exits, writes its own peak RSS and I/O counters to a file
MEASURED = """
import json, os, sys
figures = sys.argv[1]
def report():
    # VmHWM, not getrusage's ru_maxrss: that one keeps the benchmark's own size from the fork
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    json.dump({"peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
               "bytes_written": int(io["write_bytes"]), "write_calls_bytes": int(io["wchar"])},
              open(figures, "w"))
exit_now = os._exit
def report_and_exit(code):
    report()
    exit_now(code)
os._exit = report_and_exit  # run() ends the process this way, skipping atexit
sys.argv = ["semsearch"] + sys.argv[2:]
from semsearch.cli import run
run()
"""


# -- data -----------------------------------------------------------------------------------

def scifact():
    from semsearch import read_documents
    from semsearch.evaluation import load_collection

    documents = list(read_documents([SHARED / "scifact" / "corpus.jsonl"]))
    collection = load_collection(SHARED / "scifact", "test")
    vectors = eval_engine(collection).vectors([d.id for d in documents])
    return documents, np.asarray(vectors, dtype=np.float32)


def synthetic_texts(documents, count: int, seed: int, prefix: str):
    """``count`` papers of real vocabulary: a real title and five real sentences each."""
    from semsearch import Document

    rng = random.Random(seed)
    sentences = [s for d in documents for s in re.split(r"(?<=[.!?])\s+", d.abstract)
                 if len(s.split()) > 3]
    titles = [d.title for d in documents if d.title]
    for number in range(count):
        yield Document(id=f"{prefix}{number}", title=f"{rng.choice(titles)} ({prefix}{number})",
                       abstract=" ".join(rng.choice(sentences) for _ in range(5)),
                       metadata={"year": 2000 + number % 26})


def base_index(size: int, documents, real: np.ndarray) -> Path:
    """The index of ``size`` documents, built once and kept under SCRATCH."""
    from semsearch import Engine

    folder = WORK / f"base-{size}"
    if (folder / "CURRENT").exists():
        return folder
    vectors = synthetic_documents(real, size)
    extra = synthetic_texts(documents, size - len(documents), seed=size, prefix="s")
    started = time.perf_counter()
    Engine(folder).build(iter([*documents, *extra]), vectors=vectors)
    print(f"built {size:,} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def jsonl(path: Path, papers) -> Path:
    with path.open("w") as handle:
        for paper in papers:
            handle.write(json.dumps({"id": paper.id, "title": paper.title,
                                     "abstract": paper.abstract}) + "\n")
    return path


# -- measuring ------------------------------------------------------------------------------

def compile_bytecode() -> None:
    """Compile semsearch's modules as pip does when it installs the package: an editable
    checkout run with PYTHONDONTWRITEBYTECODE (as on this machine) would compile them again
    in every one-shot command measured, which a user's install never does."""
    import compileall

    import semsearch

    compileall.compile_dir(Path(semsearch.__file__).parent, quiet=1)


def command(*args: str) -> dict:
    """One whole CLI command in a fresh process: wall time, peak RSS, bytes written."""
    with tempfile.NamedTemporaryFile(suffix=".json") as figures:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", MEASURED, figures.name, *args],
                                capture_output=True, text=True)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"semsearch {' '.join(args)} failed: {result.stderr[-2000:]}")
        return {"seconds": round(wall, 3), **json.loads(Path(figures.name).read_text())}


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def warm_p50s(before: Path, after: Path, queries: list[str]) -> tuple[float, float]:
    """Median milliseconds of a hybrid search in a process that has the index open, before
    the writes (the untouched base) and after them, the two taking turns query by query so
    that the machine's drift falls on both alike."""
    from semsearch import Engine

    engines = [Engine.open(before), Engine.open(after)]
    for text in queries[:20]:
        for engine in engines:
            engine.search(text, k=10)
    times = ([], [])
    for number, text in enumerate(queries):
        order = (0, 1) if number % 2 else (1, 0)
        for side in order:
            started = time.perf_counter()
            engines[side].search(text, k=10)
            times[side].append((time.perf_counter() - started) * 1000)
    for engine in engines:
        engine.close()
    return statistics.median(times[0]), statistics.median(times[1])


def cold_searches(folder: Path, queries: list[str]) -> dict:
    return {"cold hybrid s": command("search", queries[0], "--index", str(folder))["seconds"],
            "cold dense s": command("search", queries[1], "--mode", "dense",
                                    "--index", str(folder))["seconds"]}


def one_run(size: int, base: Path, documents, queries: list[str], run: int) -> dict:
    folder = WORK / f"run-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, folder)
    # a copy has new inodes, so its first open re-hashes every file once (as after a restore
    # from backup); a user's index has been opened before: so has this one, before timing
    command("info", "--index", str(folder))
    inputs = Path(tempfile.mkdtemp(prefix="scale-"))
    try:
        new = synthetic_texts(documents, 2000, seed=1000 + run, prefix=f"n{run}-")
        batches = {"add 10": [next(new) for _ in range(10)],
                   "add 1000": [next(new) for _ in range(1000)]}
        small = [[next(new) for _ in range(10)] for _ in range(8)]
        before = {"disk bytes": disk_bytes(folder), **cold_searches(folder, queries)}
        writes = {}
        for name, papers in batches.items():
            writes[name] = command("add", str(jsonl(inputs / f"{name}.jsonl", papers)),
                                   "--index", str(folder))
        removable = [f"s{number}" for number in range(1000, 2001)]
        writes["remove 1"] = command("remove", removable[0], "--index", str(folder))
        writes["remove 1000"] = command("remove", *removable[1:1001], "--index", str(folder))
        for number, papers in enumerate(small):  # 16 more: 20 writes in all
            command("add", str(jsonl(inputs / f"small-{number}.jsonl", papers)),
                    "--index", str(folder))
            command("remove", papers[0].id, "--index", str(folder))
        after = {"disk bytes": disk_bytes(folder), **cold_searches(folder, queries)}
        before["warm hybrid p50 ms"], after["warm hybrid p50 ms"] = warm_p50s(base, folder,
                                                                             queries)
        return {"writes": writes, "before": before, "after_20_writes": after}
    finally:
        shutil.rmtree(inputs, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


# -- whole builds ---------------------------------------------------------------------------

#: measured before bounded builds (issue 21): the 1M build, and one-shot searches on it
BUILD_BASELINE = {1_000_000: {"build s": 430, "peak RSS MB": 10_240, "cold hybrid s": "1.3-1.8",
                              "cold dense s": "0.55-0.68"}}
BUILD_TARGETS = {"1M peak RSS MB": 2560, "3M peak RSS MB": 4096, "1M cold hybrid s": 0.6,
                 "1M cold dense s": 0.5}
COLD_RUNS = 5
#: rounds of COLD_RUNS searches a mode on each size: the median of the rounds' medians counts
COLD_ROUNDS = 3

#: builds an index in a process of its own; at exit writes its peak RSS and the build report
BUILD = """
import atexit, itertools, json, sys, time
sys.path.insert(0, {here!r})
import numpy as np
from scale import SHARED, synthetic_texts
from semsearch import Engine, read_documents
figures = {{}}
def report():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    figures["peak_rss_mb"] = int(status["VmHWM"].split()[0]) / 1024
    json.dump(figures, open({figures!r}, "w"))
atexit.register(report)
documents = list(read_documents([SHARED / "scifact" / "corpus.jsonl"]))[:{size}]
vectors = np.load({vectors!r}, mmap_mode="r")
papers = itertools.chain(documents, synthetic_texts(documents, {size} - len(documents),
                                                    seed={size}, prefix="s"))  # streamed
started = time.perf_counter()
built = Engine({folder!r}).build(papers, vectors=vectors)
figures.update(seconds=time.perf_counter() - started, indexed=built.indexed)
"""


def vectors_file(size: int, real: np.ndarray) -> Path:
    """``size`` synthetic vectors in a .npy file under WORK, written once."""
    path = WORK / f"vectors-{size}.npy"
    if not path.exists():
        temporary = path.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32,
                                        shape=(size, real.shape[1]))
        synthetic_documents(real, size, out=out)
        out.flush()
        del out
        temporary.rename(path)
    return path


def whole_build(size: int, real: np.ndarray, again: bool, runs: int = 1) -> dict:
    """The build's figures, the median of ``runs`` builds (each one's in "runs"); a size
    measured before is kept (its figures are in WORK/build-SIZE.json) unless ``again``:
    one-shot searches on every size can then be measured in one run, after builds run at
    different times."""
    folder = WORK / f"build-{size}"
    kept = WORK / f"build-{size}.json"
    if not again and kept.exists() and (folder / "CURRENT").exists():
        return json.loads(kept.read_text())
    kept.unlink(missing_ok=True)
    vectors = vectors_file(size, real)
    each = []
    for _ in range(runs):
        shutil.rmtree(folder, ignore_errors=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as figures:
            code = BUILD.format(here=str(HERE), figures=figures.name, size=size,
                                vectors=str(vectors), folder=str(folder))
            result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True)
            if result.returncode != 0:
                raise SystemExit(f"build of {size:,} failed: {result.stderr[-3000:]}")
            built = json.loads(Path(figures.name).read_text())
        each.append({"build s": round(built["seconds"], 1),
                     "build peak RSS MB": round(built["peak_rss_mb"]),
                     "built": time.strftime("%Y-%m-%d %H:%M"),
                     "load average after": round(os.getloadavg()[0], 2)})
        print(f"{size:,}: {json.dumps(each[-1])}", file=sys.stderr, flush=True)
    command("info", "--index", str(folder))  # a user's index has been opened before
    figures = {"build s": statistics.median(r["build s"] for r in each),
               "build peak RSS MB": statistics.median(r["build peak RSS MB"] for r in each),
               "runs": each, "indexed": built["indexed"], "disk bytes": disk_bytes(folder),
               "folder": str(folder)}
    kept.write_text(json.dumps(figures))
    return figures


def cold_rounds(folders: dict[int, str], queries: list[str]) -> dict[int, dict]:
    """One-shot searches, COLD_RUNS of each mode on each size, the sizes taking turns."""
    times = {size: {"hybrid": [], "dense": []} for size in folders}
    for run in range(COLD_RUNS):
        for size, folder in folders.items():
            for mode in ("hybrid", "dense"):
                times[size][mode].append(command("search", queries[run], "--mode", mode,
                                                 "--index", folder)["seconds"])
    return {size: {"cold hybrid s": statistics.median(t["hybrid"]),
                   "cold dense s": statistics.median(t["dense"])}
            for size, t in times.items()}


def builds(sizes: list[int], again: bool, runs: int, results: Path) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    _, real = scifact()
    queries = claim_texts()
    figures = {}
    for size in sizes:
        figures[size] = whole_build(size, real, again, runs)
        print(f"{size:,}: {json.dumps(figures[size])}", file=sys.stderr, flush=True)
    folders = {s: f["folder"] for s, f in figures.items()}
    rounds = [cold_rounds(folders, queries) for _ in range(COLD_ROUNDS)]
    for size in figures:
        for mode in ("hybrid", "dense"):
            each = [r[size][f"cold {mode} s"] for r in rounds]
            figures[size][f"cold {mode} s"] = statistics.median(each)
            figures[size][f"cold {mode} s, each round"] = each
    earlier = earlier_builds(results / "scale_build.json", figures)
    figures = dict(sorted({**earlier, **figures}.items()))
    result = {"machine": {"cpus": os.cpu_count()}, "builds": figures,
              "baseline": BUILD_BASELINE, "targets": BUILD_TARGETS}
    (results / "scale_build.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| documents | build | peak RSS | on disk | one-shot hybrid | one-shot dense |",
             "|---|---|---|---|---|---|"]
    for size, f in figures.items():
        runs = len(f.get("runs", []))
        median = f" (median of {runs})" if runs > 1 else ""
        earlier_run = " (an earlier run)" if size in earlier else ""
        lines.append(f"| {size:,}{earlier_run} | {f['build s']:.0f} s | {f['build peak RSS MB']:,.0f} MB"
                     f"{median} | "
                     f"{f['disk bytes'] / 1e9:.2f} GB | {f['cold hybrid s']:.2f} s | "
                     f"{f['cold dense s']:.2f} s |")
    lines.append("\nBefore (issue 21), 1M: build 430 s, peak RSS 10.0 GB; one-shot search "
                 "1.3-1.8 s hybrid, 0.55-0.68 s dense.")
    (results / "scale_build.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def earlier_builds(path: Path, measured: dict[int, dict]) -> dict[int, dict]:
    """The rows of sizes this run did not measure, from the results file it replaces (a 3M
    build takes an hour: a run of one size keeps the others' figures, marked as earlier)."""
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["builds"]
    return {int(size): row for size, row in rows.items() if int(size) not in measured}


def median_run(runs: list[dict]) -> dict:
    """Each figure's median over the runs."""
    def walk(parts):
        first = parts[0]
        if isinstance(first, dict):
            return {key: walk([part[key] for part in parts]) for key in first}
        return statistics.median(parts)
    return walk(runs)


def summary(by_size: dict[int, dict]) -> dict:
    out = {}
    for size, result in by_size.items():
        writes, before, after = result["writes"], result["before"], result["after_20_writes"]
        out[size] = {
            "add 10 s": writes["add 10"]["seconds"], "add 1000 s": writes["add 1000"]["seconds"],
            "remove 1 s": writes["remove 1"]["seconds"],
            "remove 1000 s": writes["remove 1000"]["seconds"],
            "peak RSS MB (add 10, remove 1)": round(max(writes["add 10"]["peak_rss_mb"],
                                                        writes["remove 1"]["peak_rss_mb"])),
            "disk after 20 / before": round(after["disk bytes"] / before["disk bytes"], 3),
            "warm hybrid p50 after / before": round(after["warm hybrid p50 ms"]
                                                    / before["warm hybrid p50 ms"], 3),
            "cold hybrid s": before["cold hybrid s"], "cold dense s": before["cold dense s"]}
    if 100_000 in out and 1_000_000 in out:
        out["add 10 at 1M / at 100k"] = round(out[1_000_000]["add 10 s"]
                                              / out[100_000]["add 10 s"], 2)
    return out


def markdown(result: dict) -> str:
    rows = ["| documents | add 10 | add 1,000 | remove 1 | remove 1,000 | peak RSS | "
            "disk after 20 writes | warm hybrid p50 after 20 | cold hybrid | cold dense |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for size, figures in result["summary"].items():
        if not isinstance(figures, dict):
            continue
        rows.append(f"| {int(size):,} | {figures['add 10 s']:.2f} s | "
                    f"{figures['add 1000 s']:.1f} s | {figures['remove 1 s']:.2f} s | "
                    f"{figures['remove 1000 s']:.2f} s | "
                    f"{figures['peak RSS MB (add 10, remove 1)']} MB | "
                    f"{figures['disk after 20 / before']:.3f}x | "
                    f"{figures['warm hybrid p50 after / before']:.3f}x | "
                    f"{figures['cold hybrid s']:.2f} s | {figures['cold dense s']:.2f} s |")
    if "add 10 at 1M / at 100k" in result["summary"]:
        rows.append(f"\nadd 10 at 1M / at 100k: {result['summary']['add 10 at 1M / at 100k']}x")
    rows.append("\nBefore segments (issue 20): " + "; ".join(
        f"{size:,}: " + ", ".join(f"{k} {v}" for k, v in figures.items())
        for size, figures in BASELINE.items()))
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k only, one run")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--builds", action="store_true",
                        help="whole builds at 100k, 1M and 3M, and one-shot searches on them")
    parser.add_argument("--again", action="store_true",
                        help="with --builds: build again sizes already built and measured")
    options = arguments(parser)
    compile_bytecode()
    if options.builds:
        return builds(options.sizes or [100_000, 1_000_000, 3_000_000], options.again,
                      options.runs or 1, options.results)
    sizes = options.sizes or ([100_000] if options.quick else [100_000, 1_000_000])
    runs = options.runs or (1 if options.quick else 3)
    WORK.mkdir(parents=True, exist_ok=True)
    documents, real = scifact()
    queries = claim_texts()[:WARM_QUERIES]
    by_size, raw = {}, {}
    for size in sizes:
        base = base_index(size, documents, real)
        raw[size] = [one_run(size, base, documents, queries, run) for run in range(runs)]
        by_size[size] = median_run(raw[size])
        print(json.dumps(summary({size: by_size[size]}), indent=1), file=sys.stderr)
    result = {"machine": {"cpus": os.cpu_count()}, "runs": runs, "summary": summary(by_size),
              "median": by_size, "each_run": raw, "baseline": BASELINE, "targets": TARGETS}
    name = "scale_quick" if options.quick else "scale"
    (options.results / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (options.results / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
