"""BM25 over segment postings (semsearch.index.lexical)."""

import functools

import numpy as np
import pytest

from semsearch.index import lexical as bm25
from semsearch.index.lexical import LexicalSettings
from semsearch.store import FolderFiles

from conftest import needs_shared

TEXTS = ["Graph neural networks for molecules", "Transformers translate languages",
         "Molecular graphs and chemistry", "The the the and of"]


def segment(folder, texts, rows, settings=LexicalSettings(), allowed=None):
    folder.mkdir(parents=True, exist_ok=True)
    writer = bm25.PostingsWriter(folder, bm25.Tokenizer(settings))
    writer.add(texts)
    writer.finish()
    return bm25.LexicalPart(bm25.SegmentPostings(FolderFiles(folder)), np.asarray(rows),
                            len(texts), writer.tokens, allowed)


def search(parts, text, k=10, settings=LexicalSettings()):
    return bm25.search(parts, bm25.Tokenizer(settings), text, k)


def test_bm25_finds_stemmed_terms_and_answers_with_rows(tmp_path):
    part = segment(tmp_path / "s", TEXTS, [10, 20, 30, 40])
    scores, rows = search([part], "molecule graph")
    assert set(rows) == {10, 30}
    assert list(scores) == sorted(scores, reverse=True)


def test_documents_sharing_no_term_are_left_out(tmp_path):
    part = segment(tmp_path / "s", TEXTS, [10, 20, 30, 40])
    assert list(search([part], "translation")[1]) == [20]
    assert len(search([part], "zebra")[1]) == 0


def test_a_query_of_stopwords_finds_nothing_when_they_are_left_out(tmp_path):
    settings = LexicalSettings(stopwords="en")
    part = segment(tmp_path / "s", TEXTS, [10, 20, 30, 40], settings)
    assert len(search([part], "the and of", settings=settings)[1]) == 0


def test_query_tokens_are_stemmed(tmp_path):
    assert bm25.Tokenizer(LexicalSettings()).terms("The Graphs of Molecules") == \
        ["the", "graph", "of", "molecul"]
    assert bm25.Tokenizer(LexicalSettings(stopwords="en")).terms("The Graphs of Molecules") == \
        ["graph", "molecul"]


def test_rows_not_allowed_are_never_returned(tmp_path):
    part = segment(tmp_path / "s", TEXTS, [10, 20, 30, 40],
                   allowed=np.array([False, True, True, True]))
    assert set(search([part], "molecule graph")[1]) == {30}


def sample_texts(sample_paths):
    from semsearch.readers import read_documents

    return list(dict.fromkeys(d.text for d in read_documents(sample_paths)))


QUERIES = ["retrieval augmented generation with knowledge graphs", "Multimodal LLMs",
           "the of and", "speech recognition for low-resource languages"]


@pytest.mark.parametrize("settings", [LexicalSettings(), LexicalSettings(k1=0.9, b=0.4,
                                                                         stopwords="en"),
                                      LexicalSettings(stemmer=None)])
def test_scores_equal_bm25s_own_retrieval(sample_paths, tmp_path, settings):
    """The settings were tuned with bm25s: these postings must rank exactly as it would."""
    import bm25s
    import Stemmer

    texts = sample_texts(sample_paths)
    part = segment(tmp_path / "s", texts, np.arange(len(texts)), settings)
    stemmer = Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None
    stopwords = sorted(bm25.STOPWORDS) if settings.stopwords else []
    retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
    retriever.index(bm25s.tokenize(texts, stopwords=stopwords, stemmer=stemmer,
                                   show_progress=False), show_progress=False)
    for query in QUERIES:
        scores, rows = search([part], query, settings=settings)
        tokens = bm25s.tokenize([query], stopwords=stopwords, stemmer=stemmer, return_ids=False,
                                show_progress=False)
        expected_rows, expected_scores = retriever.retrieve(tokens, k=10, show_progress=False)
        keep = expected_scores[0] > 0
        np.testing.assert_allclose(scores, expected_scores[0][keep], rtol=1e-5)
        assert set(rows) == set(expected_rows[0][keep])  # ties may come in either order


def test_scores_over_many_segments_equal_one_segment_over_all(sample_paths, tmp_path):
    """Collection statistics are summed at query time: splitting papers into segments
    changes no score."""
    texts = sample_texts(sample_paths)
    rows = np.arange(1, len(texts) + 1)
    whole = segment(tmp_path / "whole", texts, rows)
    cuts = [0, 7, 60, 61, len(texts)]
    parts = [segment(tmp_path / f"part{i}", texts[a:b], rows[a:b])
             for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    for query in QUERIES:
        one, split = search([whole], query, k=20), search(parts, query, k=20)
        np.testing.assert_allclose(split[0], one[0], rtol=1e-6)
        assert set(split[1]) == set(one[1])


def test_postings_spilled_to_disk_are_the_postings_kept_in_memory(sample_paths, tmp_path,
                                                                  monkeypatch):
    texts = sample_texts(sample_paths) * 3
    segment(tmp_path / "memory", texts, np.arange(len(texts)))
    monkeypatch.setattr(bm25, "SPILL_AT", 500)
    segment(tmp_path / "spilled", texts, np.arange(len(texts)))
    assert not list((tmp_path / "spilled").glob("bucket-*"))
    for name in bm25.FILES:
        np.testing.assert_array_equal(np.load(tmp_path / "memory" / name),
                                      np.load(tmp_path / "spilled" / name))


def test_merged_postings_equal_postings_built_from_the_texts(sample_paths, tmp_path):
    texts = sample_texts(sample_paths)[:40]
    first = segment(tmp_path / "a", texts[:25], np.arange(25))
    second = segment(tmp_path / "b", texts[25:], np.arange(25, 40))
    dropped = {3, 30}
    kept = [i for i in range(40) if i not in dropped]
    entries, lengths, offset = [], [], 0
    for part, positions in ((first, range(25)), (second, range(25, 40))):
        new_position = np.full(len(positions), -1)
        for at, row in enumerate(positions):
            if row not in dropped:
                new_position[at] = offset
                offset += 1
        entries.append(bm25.remapped_entries(part.postings, new_position))
        lengths.append(np.asarray(part.postings.lengths)[new_position >= 0])
    (tmp_path / "merged").mkdir()
    bm25.write_entries(tmp_path / "merged", np.concatenate(entries), np.concatenate(lengths))
    segment(tmp_path / "direct", [texts[i] for i in kept], kept)
    for name in bm25.FILES:
        np.testing.assert_array_equal(np.load(tmp_path / "merged" / name),
                                      np.load(tmp_path / "direct" / name))


def test_matched_words_leave_function_words_out(tmp_path):
    part = segment(tmp_path / "s", TEXTS, [10, 20, 30, 40])
    tokenizer = bm25.Tokenizer(LexicalSettings())
    assert bm25.matched_words(part, tokenizer, "the graphs of molecules", 0) == \
        ["graphs", "molecules"]
    assert bm25.matched_words(part, tokenizer, "graphs", 1) == []


def test_a_word_said_twice_counts_twice_as_bm25_sums_over_the_query(tmp_path):
    part = segment(tmp_path / "s", TEXTS, [10, 20, 30, 40])
    once = dict(zip(*reversed(search([part], "graph molecules"))))
    twice = dict(zip(*reversed(search([part], "graph graph molecules"))))
    graph_only = dict(zip(*reversed(search([part], "graph"))))
    for row in once:
        assert twice[row] == pytest.approx(once[row] + graph_only.get(row, 0), rel=1e-5)


def test_a_pasted_text_is_scored_by_its_rarest_terms_only(tmp_path, monkeypatch):
    """A query of thousands of distinct words costs what MAX_QUERY_TERMS of them cost."""
    texts = [f"common words and topic{i} with rare{i}" for i in range(40)]
    part = segment(tmp_path / "s", texts, list(range(40)))
    monkeypatch.setattr(bm25, "MAX_QUERY_TERMS", 3)
    scores, rows = search([part], "common words topic7 rare7 topic9", k=5)
    assert set(rows[:2]) == {7, 9}
    rarest_only = search([part], "topic7 rare7 topic9", k=5)
    assert rows.tolist() == rarest_only[1].tolist()
    assert scores == pytest.approx(rarest_only[0])


def brute_force(texts, rows, query, k, settings=LexicalSettings(), allowed=None):
    """BM25 by its definition, every document scored: what the pruned search must equal."""
    from collections import Counter

    tokenizer = bm25.Tokenizer(settings)
    documents = _counted(tuple(texts), settings)
    lengths = np.array([sum(d.values()) for d in documents], dtype=np.float64)
    average = lengths.mean()
    scores = np.zeros(len(texts))
    for term, repeats in Counter(tokenizer.terms(query)).items():
        frequency = sum(term in d for d in documents)
        idf = np.log1p((len(texts) - frequency + 0.5) / (frequency + 0.5)) * repeats
        for at, d in enumerate(documents):
            if term in d:
                scores[at] += idf * d[term] / (d[term] + settings.k1 * (
                    1 - settings.b + settings.b * lengths[at] / average))
    if allowed is not None:
        scores[~allowed] = 0
    order = [at for at in np.lexsort((rows, -scores)) if scores[at] > 0][:k]
    return scores[order], np.asarray(rows)[order]


@functools.lru_cache(maxsize=4)
def _counted(texts, settings):
    from collections import Counter

    return [Counter(bm25.Tokenizer(settings).terms(text)) for text in texts]


def zipf_texts(count, seed=0):
    """Texts whose words are as skewed as a language's: a few words in nearly every text
    (which the pruning must skip), most in a few."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}x" for i in range(3000)]
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    return [" ".join(rng.choice(words, size=rng.integers(5, 60), p=weights))
            for _ in range(count)]


def test_the_pruned_top_k_is_the_top_k_of_every_document_scored(tmp_path):
    """MaxScore skips the postings that cannot change the top k: the answer must be exactly
    BM25's over every document, for short and long queries, any k, with and without a filter,
    over one segment and several."""
    texts = zipf_texts(1500)
    rows = np.arange(100, 100 + len(texts))
    rng = np.random.default_rng(1)
    allowed = rng.random(len(texts)) < 0.3
    whole = segment(tmp_path / "whole", texts, rows)
    filtered = segment(tmp_path / "filtered", texts, rows, allowed=allowed)
    cuts = [0, 700, 1400, len(texts)]
    parts = [segment(tmp_path / f"part{i}", texts[a:b], rows[a:b])
             for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    queries = [" ".join(rng.choice(texts[int(rng.integers(len(texts)))].split(),
                                   size=int(rng.integers(1, 12)))) for _ in range(25)]
    queries += ["w0x w1x w2x", "w0x w2999x", "w5x w5x w700x"]
    for query in queries:
        for k in (1, 10, 200):
            expected = brute_force(texts, rows, query, k)
            for answer in (search([whole], query, k), search(parts, query, k)):
                np.testing.assert_allclose(answer[0], expected[0], rtol=1e-5)
                assert answer[1].tolist() == expected[1].tolist(), query  # ties: lower row
            expected = brute_force(texts, rows, query, k, allowed=allowed)
            answer = search([filtered], query, k)
            np.testing.assert_allclose(answer[0], expected[0], rtol=1e-5)
            assert answer[1].tolist() == expected[1].tolist(), query


def test_a_common_terms_postings_are_looked_up_not_read_whole(tmp_path, monkeypatch):
    """The point of the pruning: with rare terms in the query, the top 10 is decided by
    them, and a word in nearly every text is looked up for their documents only."""
    texts = [f"the common word and rare{i % 50}" for i in range(5000)]
    part = segment(tmp_path / "s", texts, np.arange(len(texts)))
    read = []
    postings = bm25.SegmentPostings.postings

    def reading(self, term):
        docs, freqs = postings(self, term)
        read.append(len(docs))
        return docs, freqs
    monkeypatch.setattr(bm25.SegmentPostings, "postings", reading)
    scores, rows = search([part], "the rare7", k=10)
    assert all(row % 50 == 7 for row in rows) and len(rows) == 10
    # "rare7" was scored whole (100 papers); "the" (5,000) was only searched, not scored;
    # then both are searched again for the best papers' exact scores
    assert read == [100, 5000, 100, 5000]
    assert scores[0] == pytest.approx(brute_force(texts, np.arange(len(texts)), "the rare7",
                                                  10)[0][0], rel=1e-5)


def test_a_term_most_of_whose_papers_are_still_hopeful_is_read_whole_not_looked_up(
        tmp_path, monkeypatch):
    """Looking a paper up costs more than reading one posting: once the papers still in the
    running are many beside a term's list, the list is read whole. Here "common" lists 80
    papers and the 30 found by "rare" are all still hopeful, so none is looked up before
    the exact scores of the best 10."""
    texts = [" ".join((["rare"] * 3 if i < 30 else []) + (["common"] if i >= 20 else []) +
                      [f"filler{i}"] * (4 if 20 <= i < 30 else 5)) for i in range(100)]
    part = segment(tmp_path / "s", texts, np.arange(len(texts)))
    looked_up = []
    lookup = bm25._looked_up

    def looking_up(docs, positions):
        looked_up.append((len(docs), len(positions)))
        return lookup(docs, positions)
    monkeypatch.setattr(bm25, "_looked_up", looking_up)
    scores, rows = search([part], "rare common", k=10)
    assert sorted(rows) == list(range(20, 30))
    # only the exact scores of the best 10 looked papers up; no lookup of the 30 in "common"
    assert [positions for _, positions in looked_up if positions != 10] == []
    expected = brute_force(texts, np.arange(len(texts)), "rare common", 10)
    np.testing.assert_allclose(scores, expected[0], rtol=1e-6)


def every_posting_scored(part, terms, k, settings, average):
    """The top k of one part with every posting of every term scored: BM25 as it was read
    before the pruning."""
    totals = np.zeros(part.count, np.float64)
    norm = settings.k1 * (1 - settings.b) + settings.k1 * settings.b * \
        part.postings.lengths / average
    for weight, term in terms:
        docs, freqs = part.postings.postings(term)
        tf = freqs.astype(np.float64)
        totals[docs] += weight * tf / (tf + norm[docs])
    seen = np.flatnonzero(totals > 0)
    best = np.lexsort((seen, -totals[seen]))[:k]
    return totals[seen][best].astype(np.float32), seen[best]


@needs_shared
@pytest.mark.parametrize("collection", ["scifact", "cranfield"])
def test_the_top_10_of_scifact_and_cranfield_is_unchanged_by_the_pruning(collection, tmp_path,
                                                                         monkeypatch):
    import json

    from conftest import SHARED

    root = SHARED / "eval" / collection
    records = [json.loads(line) for line in (root / "corpus.jsonl").read_text().splitlines()]
    texts = [f"{r.get('title', '')} {r.get('text', '')}" for r in records]
    part = segment(tmp_path / "s", texts, np.arange(len(texts)))
    queries = [json.loads(line)["text"] for line in
               (root / "queries.jsonl").read_text().splitlines()][:400]
    pruned = [search([part], query, k=10) for query in queries]
    monkeypatch.setattr(bm25, "_best_of_part", every_posting_scored)
    for query, (scores, rows) in zip(queries, pruned):
        expected_scores, expected_rows = search([part], query, k=10)
        assert rows.tolist() == expected_rows.tolist(), query
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
