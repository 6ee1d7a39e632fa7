import json
import math

import pytest

from semsearch.errors import InputError
from semsearch.evaluation import cached_engine, evaluate, load_collection, score_rankings

from conftest import write


def test_metrics_on_hand_computed_rankings():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 1}, "q3": {"d1": 1}}
    run = {"q1": ["d9", "d1"], "q2": ["d2", "d3", "d1"]}  # q3 found nothing
    metrics = score_rankings(run, qrels)
    assert metrics["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1.0 + 0.0) / 3)
    assert metrics["mrr@10"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert metrics["recall@10"] == pytest.approx(2 / 3)
    assert metrics["recall@100"] == pytest.approx(2 / 3)


def test_our_order_is_kept_even_where_scores_would_tie():
    # trec_eval breaks ties by document id; rankings are scored in the order we give.
    metrics = score_rankings({"q": ["a", "z"]}, {"q": {"z": 1}})
    assert metrics["mrr@10"] == pytest.approx(0.5)


def test_recall_at_100_sees_past_10():
    ranking = [f"x{i}" for i in range(50)] + ["rel"]
    metrics = score_rankings({"q": ranking}, {"q": {"rel": 1}})
    assert metrics["recall@10"] == 0 and metrics["recall@100"] == 1


def tiny_collection(root):
    docs = [("d1", "Aircraft wings", "Lift and drag of swept wings at high speed."),
            ("d2", "Heat in slabs", "Heat conduction in composite slabs."),
            ("d3", "Boundary layers", "Laminar boundary layer transition on flat plates."),
            ("d4", "", "")]
    write(root / "corpus.jsonl", "\n".join(json.dumps({"_id": i, "title": t, "text": x})
                                           for i, t, x in docs))
    write(root / "queries.jsonl", "\n".join(json.dumps({"_id": q, "text": t}) for q, t in [
        ("1", "heat conduction in composite slabs"), ("2", "swept wings lift"),
        ("3", "unjudged query")]))
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n1\td2\t1\n2\td1\t2\n2\td3\t1\n")
    return root


def test_evaluate_runs_every_judged_query(tmp_path, hashing_embedder):
    collection = load_collection(tiny_collection(tmp_path / "tiny"))
    assert collection.name == "tiny" and set(collection.qrels) == {"1", "2"}
    engine = cached_engine(collection, embedder=hashing_embedder)
    assert engine.info().count == 3  # the empty document is passed over
    result = evaluate(engine, collection, "lexical")
    assert result.queries == 2
    # q1 finds d2 first (1.0); q2 finds d1 first and never d3, which shares no word with it.
    ideal_q2 = 2 + 1 / math.log2(3)
    assert result.metrics["ndcg@10"] == pytest.approx((1.0 + 2 / ideal_q2) / 2)
    assert result.metrics["recall@100"] == pytest.approx((1.0 + 0.5) / 2)


def test_cached_index_is_reused_until_the_corpus_changes(tmp_path, hashing_embedder):
    collection = load_collection(tiny_collection(tmp_path / "tiny"))
    first = cached_engine(collection, embedder=hashing_embedder)
    calls = hashing_embedder.calls
    assert cached_engine(collection, embedder=hashing_embedder).folder.path == first.folder.path
    assert hashing_embedder.calls == calls
    with collection.corpus.open("a") as handle:
        handle.write('\n{"_id": "d5", "title": "New", "text": "A new document."}\n')
    assert cached_engine(collection, embedder=hashing_embedder).folder.path != first.folder.path


def test_missing_split_lists_the_ones_there(tmp_path):
    root = tiny_collection(tmp_path / "tiny")
    with pytest.raises(InputError, match=r"train\.tsv: missing.*splits here: test"):
        load_collection(root, "train")


def test_bad_qrels_line_is_named(tmp_path):
    root = tiny_collection(tmp_path / "tiny")
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n1\td2\n")
    with pytest.raises(InputError, match=r"test\.tsv:2: expected query-id, corpus-id, score"):
        load_collection(root)
