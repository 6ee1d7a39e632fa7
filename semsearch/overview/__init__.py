"""A picture of the whole collection: its map (``collection_map``, laid out by ``layout``,
drawn by ``drawing``) and its near-duplicates (``duplicates``), the same paper held twice under
different ids."""

from semsearch.overview.collection_map import CollectionMap, MapPoint, Region
from semsearch.overview.duplicates import DuplicateGroup

__all__ = ["CollectionMap", "DuplicateGroup", "MapPoint", "Region"]
