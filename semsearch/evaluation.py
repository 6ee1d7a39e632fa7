"""Measuring retrieval quality on test collections in BEIR layout.

A collection is a folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
Metrics come from ir-measures (trec_eval's definitions), never from formulas of our own.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from semsearch import _fs
from semsearch.embedding import model_name_for
from semsearch.engine import LIKE_METHODS, MODES, Engine
from semsearch.errors import InputError
from semsearch.index.lexical import LexicalSettings
from semsearch.indexing import Progress
from semsearch.store import resolve
from semsearch.readers import ReadOptions, read_documents
from semsearch.readers.text import json_records

#: our names -> ir-measures measure strings, in the order reports show them
METRICS = {"ndcg@10": "nDCG@10", "recall@10": "R@10", "recall@100": "R@100", "mrr@10": "RR@10"}
#: how deep each query's ranking goes; recall@100 needs 100
RUN_DEPTH = 100


@dataclass(frozen=True)
class Collection:
    name: str
    corpus: Path
    queries: dict[str, str]
    #: query id -> {document id: relevance}, for the chosen split
    qrels: dict[str, dict[str, int]]
    split: str


@dataclass(frozen=True)
class Evaluation:
    collection: str
    split: str
    mode: str
    queries: int
    metrics: dict[str, float]

    def to_json(self) -> dict:
        return {"collection": self.collection, "split": self.split, "mode": self.mode,
                "queries": self.queries, **{k: round(v, 4) for k, v in self.metrics.items()}}


def load_collection(root: str | Path, split: str = "test") -> Collection:
    root = Path(root)
    corpus, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path in (corpus, queries_path, qrels_path):
        if not path.is_file():
            available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
            hint = f" (splits here: {', '.join(available)})" if path == qrels_path and available \
                else ""
            raise InputError(str(path), None, f"missing: a BEIR collection needs corpus.jsonl, "
                                              f"queries.jsonl and qrels/<split>.tsv{hint}")
    qrels = read_qrels(qrels_path)
    queries = {}
    for number, record in json_records(queries_path, ReadOptions()):
        if "_id" not in record or "text" not in record:
            raise InputError(str(queries_path), number, "a query needs _id and text")
        queries[str(record["_id"])] = str(record["text"])
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise InputError(str(qrels_path), None,
                         f"judgments for queries not in queries.jsonl: {', '.join(missing[:5])}")
    return Collection(name=root.resolve().name, corpus=corpus, queries=queries, qrels=qrels,
                      split=split)


def require_corpus(engine: Engine, collection: Collection) -> None:
    """Refuse an index that lacks the papers the collection judges (another corpus)."""
    judged = sorted({doc_id for judged in collection.qrels.values() for doc_id in judged})
    missing = [doc_id for doc_id in judged if not engine.has(doc_id)]
    if missing:
        raise InputError(str(engine.path), None,
                         f"{len(missing)} of the {len(judged)} papers {collection.name}'s "
                         f"judgments name are not in this index (such as {missing[0]!r}): "
                         f"index {collection.corpus} into it, or leave out --index")


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query-id, corpus-id, score per line, after a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if number == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # the header
            if not row:
                continue
            if len(row) < 3 or not row[2].lstrip("-").isdigit():
                raise InputError(str(path), number, "expected query-id, corpus-id, score")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def cached_engine(collection: Collection, model: str | None = None,
                  lexical: LexicalSettings = LexicalSettings(),
                  progress: Progress | None = None, root: Path | None = None,
                  **engine_options) -> Engine:
    """The collection's index: embedded once per corpus content and model; rebuilt from its
    stored vectors when only the BM25 settings changed. It lives under ``root`` (by default
    the index root, as other indexes)."""
    embedder = engine_options.get("embedder")
    model_name = embedder.model_name if embedder else model_name_for(model)
    key = json.dumps([_fs.file_checksum(collection.corpus)["sha256"], model_name])
    name = f"eval-{collection.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    engine = Engine(root / name if root else resolve(name), model=model, **engine_options)
    if engine.folder.exists() and engine.needs_upgrade():
        engine.upgrade(progress)  # cached by an older semsearch: its vectors are still good
    if not engine.folder.exists():
        # A BEIR corpus may hold empty documents (Cranfield has two); they cannot be found
        # by any method, so they are passed over rather than stopping the evaluation.
        documents = read_documents([collection.corpus], "beir", ReadOptions(skip_bad=True))
        engine.build(documents, progress=progress, lexical=lexical)
    elif engine.info().lexical != asdict(lexical):
        engine.rebuild(lexical=lexical, progress=progress)
    return engine


def evaluate(engine: Engine, collection: Collection, mode: str) -> Evaluation:
    """Run every judged query through ``engine`` and score the rankings."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    judged = list(collection.qrels)
    answers = engine.search_many([collection.queries[q] for q in judged], k=RUN_DEPTH, mode=mode)
    run = {query_id: [hit.id for hit in hits] for query_id, hits in zip(judged, answers)}
    return Evaluation(collection=collection.name, split=collection.split, mode=mode,
                      queries=len(run), metrics=score_rankings(run, collection.qrels))


def score_rankings(run: dict[str, Iterable[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean of each metric over the judged queries; a query with no results scores 0."""
    import ir_measures

    scored = {}
    for query_id in qrels:
        ranking = list(run.get(query_id, []))
        # Strictly falling scores keep our order: trec_eval breaks score ties by document id.
        scored[query_id] = {doc: float(len(ranking) - i) for i, doc in enumerate(ranking)} or \
            {"\x00no-result": 0.0}
    measures = {name: ir_measures.parse_measure(text) for name, text in METRICS.items()}
    values = ir_measures.calc_aggregate(list(measures.values()), qrels, scored)
    return {name: float(values[measure]) for name, measure in measures.items()}


FEEDBACK_POSITIVES = 2
FEEDBACK_MIN_JUDGED = 4


def relevance_feedback(engine: Engine, collection: Collection,
                       seed: int = 0) -> list[Evaluation]:
    """`like` given relevant papers, against plain query search, on the same queries.

    For each query with at least 4 relevant judged documents, 2 of them (picked at random,
    with ``seed``) are given as the papers liked; every method then ranks the rest, and is
    scored without the given two (they are neither in the rankings nor in the judgments).
    """
    import random

    rng = random.Random(seed)
    given: dict[str, list[str]] = {}
    for query_id, judged in sorted(collection.qrels.items()):
        relevant = sorted(doc for doc, grade in judged.items() if grade > 0)
        if len(relevant) >= FEEDBACK_MIN_JUDGED:
            given[query_id] = rng.sample(relevant, FEEDBACK_POSITIVES)
    qrels = {query_id: {doc: grade for doc, grade in collection.qrels[query_id].items()
                        if doc not in liked} for query_id, liked in given.items()}
    rankers = {
        **{f"query-{mode}": lambda query_id, liked, mode=mode: engine.search(
            collection.queries[query_id], k=RUN_DEPTH + len(liked), mode=mode)
           for mode in ("dense", "hybrid")},
        **{f"like-{method}-{mode}": lambda query_id, liked, method=method, mode=mode:
           engine.more_like_these(liked, k=RUN_DEPTH, method=method, mode=mode)
           for method in LIKE_METHODS for mode in ("dense", "hybrid")},
    }
    results = []
    for name, ranker in rankers.items():
        run = {query_id: [hit.id for hit in ranker(query_id, liked) if hit.id not in liked]
               for query_id, liked in given.items()}
        results.append(Evaluation(collection=collection.name, split=collection.split,
                                  mode=name, queries=len(run), metrics=score_rankings(run, qrels)))
    return results
