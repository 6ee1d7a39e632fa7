import numpy as np

from semsearch.lexical import LexicalIndex, LexicalSettings

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
    loaded = LexicalIndex.load(tmp_path / "lexical")
    assert loaded.settings == settings and len(loaded) == 4
    np.testing.assert_array_equal(loaded.search("graph", 5)[1], index.search("graph", 5)[1])


def test_query_tokens_are_stemmed_without_stopwords():
    assert build().tokens("The Graphs of Molecules") == ["the", "graph", "of", "molecul"]
    assert build(LexicalSettings(stopwords="en")).tokens("The Graphs of Molecules") == ["graph", "molecul"]
