"""Explanations (semsearch.search.explain): an abstract's sentences, and the few of them an
explanation compares with the query, so that its cost stays bounded however long the
abstract."""

from semsearch.search.explain import MAX_SENTENCES, candidates, sentences


def test_an_abstract_splits_into_sentences_at_full_stops_before_capitals():
    assert sentences("We study graphs. Results hold (mostly). 3 cases remain, e.g. trees.") == [
        "We study graphs.", "Results hold (mostly).", "3 cases remain, e.g. trees."]


def test_a_long_abstract_offers_the_sentences_sharing_most_query_words_in_order():
    found = [f"Sentence {i} about filler." for i in range(40)]
    found[30] = "Graph retrieval for questions."
    found[5] = "Graph methods."
    chosen = candidates(found, {"graph", "retrieval"})
    assert len(chosen) == MAX_SENTENCES
    assert chosen.index("Graph methods.") < chosen.index("Graph retrieval for questions.")
    assert chosen[:2] == ["Sentence 0 about filler.", "Sentence 1 about filler."]


def test_a_short_abstract_offers_every_sentence():
    found = ["One.", "Two."]
    assert candidates(found, {"x"}) == found
