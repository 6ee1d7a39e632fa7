"""Errors a user can act on. The CLI prints their message on one line and exits non-zero."""

from __future__ import annotations


class SemsearchError(Exception):
    """Base of every error semsearch raises on purpose."""


class InputError(SemsearchError):
    """A corpus file (or one record in it) that cannot be read; names the file and line."""

    def __init__(self, path: str | None, line: int | None, message: str):
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}" if where else message)


class NoDocuments(InputError):
    """The input held no documents at all: nothing was written."""

    def __init__(self, message: str):
        super().__init__(None, None, message)


class StoreError(SemsearchError):
    """An index that is missing, damaged, or used in a way it does not allow."""


class QueryError(SemsearchError):
    """A query that cannot be answered as asked (empty text, bad k, unknown paper)."""


class UnknownPaper(QueryError):
    """A paper named by id or title that is not in the index."""


class InterruptedAfterCommit(SemsearchError):
    """Ctrl-C (or another interruption) that landed after a write had committed: the index
    holds the write; what was left (a merge, tidying up) is done by a later write."""
