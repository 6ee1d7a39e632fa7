import numpy as np
import pytest

from semsearch.lexical import LexicalIndex, LexicalSettings
from semsearch.store import FolderFiles

TEXTS = ["Graph neural networks for molecules", "Transformers translate languages",
         "Molecular graphs and chemistry", "The the the and of"]


def build(settings=LexicalSettings()):
    rows = np.array([10, 20, 30, 40])
    return LexicalIndex.build([(rows[:2], TEXTS[:2]), (rows[2:], TEXTS[2:])], settings)


def test_bm25_finds_stemmed_terms_and_answers_with_rows():
    scores, rows = build().search("molecule graph", k=10)
    assert set(rows) == {10, 30}
    assert list(scores) == sorted(scores, reverse=True)


def test_documents_sharing_no_term_are_left_out():
    scores, rows = build().search("translation", k=10)
    assert list(rows) == [20]


def test_a_query_of_stopwords_or_unknown_words_finds_nothing():
    assert len(build(LexicalSettings(stopwords="en")).search("the and of", k=5)[1]) == 0
    assert len(build().search("zebra", k=5)[1]) == 0


def test_save_and_load_keep_settings_and_answers(tmp_path):
    settings = LexicalSettings(k1=1.5, b=0.5)
    index = build(settings)
    index.save(tmp_path / "lexical")
    loaded = LexicalIndex.load(FolderFiles(tmp_path / "lexical"))
    assert loaded.settings == settings and len(loaded) == 4
    np.testing.assert_array_equal(loaded.search("graph", 5)[1], index.search("graph", 5)[1])


def test_query_tokens_are_stemmed_without_stopwords():
    assert build().tokens("The Graphs of Molecules") == ["the", "graph", "of", "molecul"]
    assert build(LexicalSettings(stopwords="en")).tokens("The Graphs of Molecules") == ["graph", "molecul"]


@pytest.mark.parametrize("settings", [LexicalSettings(), LexicalSettings(k1=0.9, b=0.4, stopwords="en"),
                                      LexicalSettings(stemmer=None)])
def test_query_scores_equal_bm25s_own_retrieval(sample_paths, settings):
    """The numpy query path must rank exactly as bm25s itself would."""
    import bm25s
    import Stemmer

    from semsearch.readers import read_documents

    texts = list(dict.fromkeys(d.text for d in read_documents(sample_paths)))
    index = LexicalIndex.build([(np.arange(len(texts)), texts)], settings)
    stemmer = Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None
    retriever = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
    retriever.index(bm25s.tokenize(texts, stopwords=settings.stopwords or [], stemmer=stemmer,
                                   show_progress=False), show_progress=False)
    for query in ["retrieval augmented generation with knowledge graphs", "Multimodal LLMs",
                  "the of and", "speech recognition for low-resource languages"]:
        scores, rows = index.search(query, 10)
        tokens = bm25s.tokenize([query], stopwords=settings.stopwords or [], stemmer=stemmer,
                                return_ids=False, show_progress=False)
        expected_rows, expected_scores = retriever.retrieve(tokens, k=10, show_progress=False)
        keep = expected_scores[0] > 0
        np.testing.assert_allclose(scores, expected_scores[0][keep], rtol=1e-5)
        assert set(rows) == set(expected_rows[0][keep])  # ties may come in either order
