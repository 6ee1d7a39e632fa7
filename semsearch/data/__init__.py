"""The sample corpus that ships with semsearch: two saved pages of a daily paper feed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_paths() -> list[Path]:
    """The sample pages, in order, as real files (they are installed with the package)."""
    folder = resources.files("semsearch.data") / "sample"
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".txt"))
