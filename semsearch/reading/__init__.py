"""The reader's side of an index: tags (papers marked for and against them) that outlive every
rebuild, recommendations for them, and the inbox of each day's new papers.

``state`` keeps the reader's state on disk; ``recommend`` ranks papers for a tag; ``inbox``
finds what is new, folds copies of one paper together and writes digests; ``reader`` puts
them together over an engine's public calls (``Engine.reader``).
"""

from semsearch.reading.inbox import Inbox
from semsearch.reading.reader import Reader, TagChange, TagInfo

__all__ = ["Inbox", "Reader", "TagChange", "TagInfo"]
