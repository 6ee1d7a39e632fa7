"""A picture of the whole collection: near-duplicates (``duplicates``), the same paper
held twice under different ids."""

from semsearch.overview.duplicates import DuplicateGroup

__all__ = ["DuplicateGroup"]
