"""Lexical search: BM25 over each segment's postings, with the collection's statistics.

Each segment keeps, for every term its documents contain, the documents (by position in the
segment) and how often the term occurs, plus each document's length. A query sums, per
segment, the BM25 scores of its terms, with document frequency, document count and average
length taken over all live segments at query time: adding a segment never rewrites another,
and scores are those of one index over everything. (As in Lucene, papers deleted since their
segment was written still count in these statistics until a merge drops them.)

Scores follow bm25s's "lucene" formula (the settings were tuned with bm25s, on SciFact train):
idf = ln(1 + (N - df + 0.5) / (df + 0.5)), and tf / (tf + k1 * (1 - b + b * length / average)).
Terms are stored by a 64-bit hash of their text, so a segment's vocabulary is one sorted
array, read a few pages at a time by binary search, not loaded at open.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semsearch import _fs
from semsearch.errors import StoreError

if TYPE_CHECKING:
    from semsearch.store.folder import PartFiles

#: runs of two or more word characters, as bm25s splits text
TOKEN = re.compile(r"(?u)\b\w\w+\b")
TERMS, STARTS, DOCS, FREQS, LENGTHS = ("terms.npy", "starts.npy", "docs.npy", "freqs.npy",
                                       "lengths.npy")
FILES = (TERMS, STARTS, DOCS, FREQS, LENGTHS)
#: English function words: left out of explanations always, and out of BM25 with
#: stopwords="en" (the default keeps them: BM25 was tuned without a stopword list)
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves via using use used
""".split())


@dataclass(frozen=True)
class LexicalSettings:
    """BM25 parameters and tokenisation; defaults tuned on SciFact train (see benchmarks/)."""

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = None

    def __post_init__(self) -> None:
        if self.method != "lucene":
            raise StoreError(f"BM25 method {self.method!r} is not supported; only 'lucene'")

    def to_dict(self) -> dict:
        return asdict(self)


class Tokenizer:
    """Text to terms as the index sees them: lower case, runs of word characters, stemmed."""

    def __init__(self, settings: LexicalSettings):
        self.settings = settings
        self._stem = None
        if settings.stemmer:
            import Stemmer

            self._stem = Stemmer.Stemmer(settings.stemmer)
        self._hashes: dict[str, int] = {}

    def words_and_terms(self, text: str) -> list[tuple[str, str]]:
        words = TOKEN.findall(text.lower())
        if self.settings.stopwords:
            words = [word for word in words if word not in STOPWORDS]
        return list(zip(words, self._stem.stemWords(words) if self._stem else words))

    def terms(self, text: str) -> list[str]:
        words = TOKEN.findall(text.lower())
        if self.settings.stopwords:
            words = [word for word in words if word not in STOPWORDS]
        return self._stem.stemWords(words) if self._stem else words

    def hash(self, term: str) -> int:
        found = self._hashes.get(term)
        if found is None:
            found = term_hash(term)
            if len(self._hashes) < 2_000_000:  # a cache, bounded
                self._hashes[term] = found
        return found


def term_hash(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")


# -- writing a segment's postings ----------------------------------------------------------

_ENTRY = np.dtype([("term", "<u8"), ("doc", "<i4"), ("freq", "<u2")])
#: postings gathered in memory before they are sorted into buckets on disk
SPILL_AT = 4_000_000
#: buckets by the top bits of a term's hash: sorting one at a time bounds the memory a large
#: segment's postings need to about 1/64 of them
BUCKET_BITS = 6


class PostingsWriter:
    """Builds a segment's postings from its documents' texts, in position order, in memory
    bounded by ``SPILL_AT`` postings (more are sorted into hash buckets on disk first)."""

    def __init__(self, folder: Path, tokenizer: Tokenizer):
        self.folder = folder
        self.tokenizer = tokenizer
        self._entries: list[np.ndarray] = []
        self._pending = 0
        self._lengths: list[int] = []
        self._spilled = False

    def add(self, texts: Iterable[str]) -> None:
        for text in texts:
            terms = self.tokenizer.terms(text)
            self._lengths.append(len(terms))
            counts = Counter(terms)
            block = np.empty(len(counts), dtype=_ENTRY)
            block["term"] = [self.tokenizer.hash(term) for term in counts]
            block["doc"] = len(self._lengths) - 1
            block["freq"] = np.minimum(list(counts.values()), 65535)
            self._entries.append(block)
            self._pending += len(block)
        if self._pending >= SPILL_AT:
            self._spill()

    @property
    def tokens(self) -> int:
        return int(sum(self._lengths))

    def finish(self, progress=None) -> None:
        """Write terms, starts, docs, freqs and lengths into the folder (``progress`` as
        ``semsearch.indexing.Progress``: stage "lexical", buckets sorted)."""
        np.save(self.folder / LENGTHS, np.asarray(self._lengths, dtype=np.int32))
        if not self._spilled:
            entries = np.concatenate(self._entries) if self._entries else np.empty(0, _ENTRY)
            self._entries = []
            _write_sorted(self.folder, [_sorted(entries)])
            return
        self._spill()
        buckets = sorted(self.folder.glob("bucket-*.bin"))

        def sorted_buckets():
            for number, path in enumerate(buckets):
                yield _sorted(np.fromfile(path, dtype=_ENTRY))
                if progress:
                    progress("lexical", number + 1, len(buckets))

        _write_sorted(self.folder, sorted_buckets(),
                      total=sum(path.stat().st_size for path in buckets) // _ENTRY.itemsize)
        for path in buckets:
            path.unlink()

    def _spill(self) -> None:
        if not self._entries:
            return
        entries = np.concatenate(self._entries)
        self._entries, self._pending, self._spilled = [], 0, True
        bucket = entries["term"] >> np.uint64(64 - BUCKET_BITS)
        order = np.argsort(bucket, kind="stable")
        entries, bucket = entries[order], bucket[order]
        edges = np.searchsorted(bucket, np.arange((1 << BUCKET_BITS) + 1, dtype=np.uint64))
        for number in range(1 << BUCKET_BITS):
            part = entries[edges[number]:edges[number + 1]]
            if len(part):
                with (self.folder / f"bucket-{number:03d}.bin").open("ab") as handle:
                    part.tofile(handle)


def _sorted(entries: np.ndarray) -> np.ndarray:
    return entries[np.lexsort((entries["doc"], entries["term"]))]


def _write_sorted(folder: Path, parts: Iterable[np.ndarray], total: int | None = None) -> None:
    """Postings from parts already in (term, doc) order, each part's terms above the last's."""
    parts = list(parts) if total is None else parts
    if total is None:
        total = sum(len(part) for part in parts)
    docs = _fs.ArrayWriter(folder / DOCS, np.int32, (total,))
    freqs = _fs.ArrayWriter(folder / FREQS, np.uint16, (total,))
    terms, counts = [], []
    for part in parts:
        docs.append(part["doc"])
        freqs.append(part["freq"])
        unique, count = np.unique(part["term"], return_counts=True)
        terms.append(unique)
        counts.append(count)
    docs.close()
    freqs.close()
    terms_array = np.concatenate(terms) if terms else np.zeros(0, np.uint64)
    starts = np.zeros(len(terms_array) + 1, dtype=np.int64)
    if terms:
        np.cumsum(np.concatenate(counts), out=starts[1:])
    np.save(folder / TERMS, terms_array)
    np.save(folder / STARTS, starts)


def remapped_entries(postings: SegmentPostings, new_position: np.ndarray) -> np.ndarray:
    """A segment's postings as (term, doc, freq) entries with documents moved to
    ``new_position`` (by old position; -1 drops the document), for merging segments without
    tokenizing their texts again."""
    starts = np.asarray(postings._array(STARTS))
    entries = np.empty(int(starts[-1]), dtype=_ENTRY)
    entries["term"] = np.repeat(np.asarray(postings._array(TERMS)), np.diff(starts))
    entries["doc"] = new_position[np.asarray(postings._array(DOCS))]
    entries["freq"] = postings._array(FREQS)
    return entries[entries["doc"] >= 0]


def write_entries(folder: Path, entries: np.ndarray, lengths: np.ndarray) -> None:
    """Postings files from (term, doc, freq) entries in any order, and document lengths."""
    np.save(folder / LENGTHS, np.asarray(lengths, dtype=np.int32))
    _write_sorted(folder, [_sorted(entries)])


# -- reading and scoring -------------------------------------------------------------------

class SegmentPostings:
    """One segment's postings, memory-mapped: a query reads the pages of its own terms."""

    def __init__(self, files: PartFiles):
        self._files = files
        self._arrays: dict[str, np.ndarray] = {}
        self._norms: tuple[tuple[float, float], np.ndarray] | None = None

    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            try:
                # a plain array over the map: slicing a np.memmap costs a Python call each
                self._arrays[name] = np.asarray(_fs.load_array(self._files.path(name), mmap_mode="r"))
            except (OSError, ValueError) as error:
                raise StoreError(f"{self._files.shown(name)}: cannot read the BM25 postings "
                                 f"({error})") from None
        return self._arrays[name]

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """For each term hash, its index in this segment's vocabulary, or -1."""
        terms = self._array(TERMS)
        if not len(terms):
            return np.full(len(hashes), -1)
        at = np.minimum(np.searchsorted(terms, hashes), len(terms) - 1)
        return np.where(terms[at] == hashes, at, -1)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, frequencies) of the documents holding term number ``term``."""
        starts = self._array(STARTS)
        start, stop = int(starts[term]), int(starts[term + 1])
        return self._array(DOCS)[start:stop], self._array(FREQS)[start:stop]

    def document_frequency(self, term: int) -> int:
        starts = self._array(STARTS)
        return int(starts[term + 1] - starts[term])

    @property
    def lengths(self) -> np.ndarray:
        return self._array(LENGTHS)

    def norms(self, k1_free: float, k1_length: float) -> np.ndarray:
        """Each document's BM25 length norm, k1 * (1 - b + b * length / average), as float32:
        kept for the last average asked for (it changes only when the collection does)."""
        key = (k1_free, k1_length)
        if self._norms is None or self._norms[0] != key:
            self._norms = (key, (k1_free + k1_length * self.lengths).astype(np.float32))
        return self._norms[1]


@dataclass(frozen=True)
class LexicalPart:
    """What BM25 needs of one segment: its postings, its rows (by position), and which
    positions may be returned (None: all)."""

    postings: SegmentPostings
    rows: np.ndarray
    count: int
    tokens: int
    allowed: np.ndarray | None  # boolean, by position


#: distinct terms of a query scored at most (the rarest); a pasted abstract has about 100
MAX_QUERY_TERMS = 256


def search(parts: Sequence[LexicalPart], tokenizer: Tokenizer, text: str,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the best k documents over all parts that share a term with ``text``,
    best first."""
    terms = tokenizer.terms(text)
    if not terms or not parts or k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    # each distinct term once, weighted by how often the query says it (the same sum)
    hashes, repeats = np.unique(np.array([tokenizer.hash(term) for term in terms],
                                         dtype=np.uint64), return_counts=True)
    found = [part.postings.lookup(hashes) for part in parts]
    documents = sum(part.count for part in parts)
    average = sum(part.tokens for part in parts) / max(documents, 1)
    frequency = np.zeros(len(hashes))
    for part, where in zip(parts, found):
        for position, term in enumerate(where):
            if term >= 0:
                frequency[position] += part.postings.document_frequency(int(term))
    idf = np.log1p((documents - frequency + 0.5) / (frequency + 0.5))
    if len(hashes) > MAX_QUERY_TERMS:  # a pasted text: its rarest terms say what it is about
        kept = np.zeros(len(hashes), dtype=bool)
        kept[np.argsort(-idf, kind="stable")[:MAX_QUERY_TERMS]] = True
        found = [np.where(kept, where, -1) for where in found]
    idf = idf * repeats
    settings = tokenizer.settings
    best_scores, best_rows = [], []
    for part, where in zip(parts, found):
        terms_of_part = [(float(idf[position]), int(term))
                         for position, term in enumerate(where) if term >= 0]
        if not terms_of_part:
            continue
        scores, positions = _best_of_part(part, terms_of_part, k, settings, average)
        best_scores.append(scores)
        best_rows.append(part.rows[positions])
    if not best_scores:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    scores, rows = np.concatenate(best_scores), np.concatenate(best_rows)
    order = np.lexsort((rows, -scores))[:k]
    return scores[order], rows[order]


#: float32 sums are within this (relative) of the exact ones: pruning and the choice of the
#: top k allow for it, and the papers it could reorder are scored again in float64
ROUNDING = 1e-4


#: a term's postings are looked up (a binary search a document) for the documents still
#: hopeful only when those are fewer than this share of its list; more, and reading the
#: whole list costs less
LOOKUP_SHARE = 0.2


def _best_of_part(part: LexicalPart, terms: list[tuple[float, int]], k: int,
                  settings: LexicalSettings, average: float) -> tuple[np.ndarray, np.ndarray]:
    """The best k (scores, positions) of one part, by MaxScore: a term adds less than its
    weight (idf) to any document's score, so once the terms not yet read could not lift an
    unseen document to the k-th best score so far, only documents already seen can be in the
    top k. The remaining (common) terms are then read whole while that is cheaper than
    looking them up, and looked up for the documents still hopeful once those are few. The
    sums are float32 (half the memory traffic); the papers within rounding of the k-th are
    scored again exactly. Exact: the same top k and scores as reading every posting."""
    terms = sorted(terms, key=lambda weighted: -weighted[0])
    # what the terms from the i-th on could add to a document at most
    left = np.cumsum([weight for weight, _ in terms][::-1])[::-1].tolist() + [0.0]
    norms = part.postings.norms(*_norm_terms(settings, average))

    def contribution(weight: float, docs: np.ndarray, freqs: np.ndarray) -> np.ndarray:
        tf = freqs.astype(np.float32)
        scores = norms[docs]
        scores += tf
        np.divide(tf, scores, out=scores)
        scores *= np.float32(weight)
        return scores

    # the terms read whole add into one array over the part (allocated lazily by the
    # operating system: only the pages of documents found are touched); a document's total
    # is 0 until a term adds to it, so the totals also tell which documents are new
    totals = np.zeros(part.count, np.float32)
    seen_parts: list[np.ndarray] = []
    best = _KBest(k)
    at = 0
    while at < len(terms):
        weight, term = terms[at]
        opening = best.pool is None or left[at] >= best.threshold  # new documents may enter
        if not opening:  # never again: from here a term read whole adds to documents unseen
            # too, but they stay out of ``seen`` (their sums can still bound the k-th best)
            seen = np.concatenate(seen_parts)
            seen_parts = [seen[totals[seen] + left[at] >= best.threshold]]
            if len(seen_parts[0]) < LOOKUP_SHARE * part.postings.document_frequency(term):
                break
        docs, freqs = part.postings.postings(term)
        # numpy indexes by intp: the positions converted once, not at each use below (the
        # documents seen stay int32, as the postings they are looked up in)
        index = docs.astype(np.intp)
        if part.allowed is not None:
            keep = part.allowed[index]
            docs, freqs, index = docs[keep], freqs[keep], index[keep]
        before = totals[index]
        if opening:
            seen_parts.append(docs[before == 0])
        before += contribution(weight, index, freqs)  # a term lists a document once
        totals[index] = before
        if best.pool is not None:
            best.add(index, before, totals)
        elif sum(map(len, seen_parts)) >= k:
            seen = np.concatenate(seen_parts)
            seen_parts = [seen]
            best.choose(seen, totals[seen])
        at += 1
    # (a break above left only the documents the terms left could lift to the top k)
    seen = np.concatenate(seen_parts) if seen_parts else np.zeros(0, np.int64)
    seen = np.sort(seen)
    scores = totals[seen]
    threshold = best.threshold
    for weight, term in terms[at:]:
        hopeful = scores + left[at] >= threshold
        seen, scores = seen[hopeful], scores[hopeful]
        docs, freqs = part.postings.postings(term)
        holds, where = _looked_up(docs, seen)
        scores[holds] += contribution(weight, seen[holds], np.asarray(freqs[where]))
        at += 1
        if len(seen) > 4 * k:  # fewer papers to look up in the next terms
            threshold = max(threshold, _kth_best(scores, k))
    if len(seen) > k:
        seen = seen[scores >= _kth_best(scores, k)]
    exact = _exact_scores(part, terms, seen, settings, average)
    best_first = np.lexsort((seen, -exact))[:k]  # ties: the earlier paper, as across parts
    return exact[best_first].astype(np.float32), seen[best_first]


def _kth_best(scores: np.ndarray, k: int) -> float:
    """The k-th best of these sums, lowered by their rounding: a safe bound to prune by."""
    return float(-np.partition(-scores, k - 1)[k - 1]) * (1 - ROUNDING)


class _KBest:
    """The k documents with the best sums so far, and the k-th of those sums lowered by
    rounding (``threshold``): a safe bound to prune by, as a document's score is at least any
    sum of some of its terms. After a term is read, the k best are among the k best before
    it and that term's documents (no other sum changed), so it is never worked out again
    over every document seen."""

    def __init__(self, k: int):
        self.k = k
        self.pool: np.ndarray | None = None  # positions of the k best
        self.threshold = 0.0

    def choose(self, positions: np.ndarray, sums: np.ndarray) -> None:
        """The k best of these documents (each once) with these sums."""
        chosen = np.argpartition(-sums, self.k - 1)[:self.k]
        self.pool = positions[chosen].astype(np.intp)
        self.threshold = max(self.threshold, float(sums[chosen].min()) * (1 - ROUNDING))

    def add(self, docs: np.ndarray, sums: np.ndarray, totals: np.ndarray) -> None:
        """A term's (sorted) documents and their sums now."""
        others = self.pool[~_looked_up(docs, self.pool)[0]]  # each document once
        self.choose(np.concatenate((others, docs)), np.concatenate((totals[others], sums)))


def _exact_scores(part: LexicalPart, terms: list[tuple[float, int]], positions: np.ndarray,
                  settings: LexicalSettings, average: float) -> np.ndarray:
    """BM25 of the documents at ``positions`` (sorted) in float64, the terms added in the
    order given, their postings looked up for these documents alone."""
    lengths = part.postings.lengths[positions]
    totals = np.zeros(len(positions))
    k1_free, k1_length = _norm_terms(settings, average)
    for weight, term in terms:
        docs, freqs = part.postings.postings(term)
        holds, where = _looked_up(docs, positions)
        tf = freqs[where].astype(np.float64)
        totals[holds] += weight * tf / (tf + k1_free + k1_length * lengths[holds])
    return totals


def _norm_terms(settings: LexicalSettings, average: float) -> tuple[float, float]:
    """(k1 * (1 - b), k1 * b / average): a document's length norm is the first plus the
    second times its length."""
    return settings.k1 * (1 - settings.b), settings.k1 * settings.b / average


def _looked_up(docs: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the (sorted) positions a term's (sorted) postings hold, and at which index of
    the postings each of those is: a binary search a position, never a pass over the list."""
    if not len(docs):
        return np.zeros(len(positions), bool), np.zeros(0, np.int64)
    where = np.minimum(np.searchsorted(docs, positions), len(docs) - 1)
    holds = docs[where] == positions
    return holds, where[holds]


def matched_words(part: LexicalPart, tokenizer: Tokenizer, text: str, position: int) -> list[str]:
    """The words of ``text`` whose terms the document at ``position`` holds, function words
    left out (they tell nothing)."""
    matched = []
    pairs = [(w, t) for w, t in tokenizer.words_and_terms(text) if w not in STOPWORDS]
    if not pairs:
        return matched
    where = part.postings.lookup(np.array([tokenizer.hash(t) for _, t in pairs], np.uint64))
    for (word, _), term in zip(pairs, where):
        if term < 0 or word in matched:
            continue
        docs, _ = part.postings.postings(int(term))
        at = np.searchsorted(docs, position)
        if at < len(docs) and docs[at] == position:
            matched.append(word)
    return matched


def settings_from(data: dict | None) -> LexicalSettings:
    return LexicalSettings(**(data or {}))


