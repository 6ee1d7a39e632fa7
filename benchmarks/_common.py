"""What the benchmarks share: where the test collections are, where their results go, where
scratch indexes go (a cache outside the source tree, reused between runs), and a check for
the optional packages a benchmark needs (`pip install -e ".[bench]"`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from semsearch import config
from semsearch.evaluation import Collection, cached_engine

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHARED = HERE.parents[1] / "shared" / "eval"
#: indexes of the test collections and other scratch indexes: never in the source tree
SCRATCH = config.cache_root() / "benchmarks"


def eval_engine(collection: Collection, **options):
    """The collection's evaluation index, kept under SCRATCH."""
    return cached_engine(collection, root=SCRATCH, **options)


def require(*modules: str) -> None:
    """Stop at once, saying how to get them, if optional packages are missing (rather than
    after minutes of work)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"this benchmark needs {', '.join(missing)}: pip install -e \".[bench]\"")
