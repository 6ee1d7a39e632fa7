"""The benchmark scripts as a new user runs them: each says where its results go, and by
default that is never the committed results the READMEs show."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
WRITERS = ["duplicates", "feedback", "ingest", "lexical", "map", "parse", "passages", "peers",
           "quality", "query_ab", "ray_ingest", "recommend", "scale", "serve_load",
           "tune_quality"]


@pytest.mark.parametrize("name", WRITERS)
def test_a_benchmark_writes_where_it_is_told_and_never_over_the_committed_results(name):
    said = subprocess.run([sys.executable, f"{name}.py", "--help"], cwd=BENCHMARKS,
                          capture_output=True, text=True, timeout=120)
    assert said.returncode == 0, said.stderr
    assert "--results DIR" in said.stdout
    default = said.stdout.split("(default:", 1)[1].split(";")[0]
    assert str(BENCHMARKS / "results") not in " ".join(default.split())
