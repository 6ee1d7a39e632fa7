"""Filters as users type them: author names in any form, categories in any case or by prefix,
tags; and a filter that matches no paper is said to, with the closest values."""

import pytest

from semsearch import Engine
from semsearch.documents import Document
from semsearch.errors import QueryError
from semsearch.filters import Filter, author_keys, name_parts

from conftest import HashingEmbedder

PAPERS = [
    Document("gat", "Graph attention networks", "Attention over graph neighbourhoods.",
             {"year": 2018, "authors": ["Petar Veličković", "Pietro Liò", "Yoshua Bengio"],
              "categories": ["stat.ML", "cs.LG"]}),
    Document("attn", "Attention is all you need", "The transformer, attention only.",
             {"year": 2017, "authors": ["Ashish Vaswani", "Aidan N. Gomez"],
              "categories": ["cs.CL"], "tags": ["Transformers", "must read"]}),
    Document("bert", "BERT", "Pretraining deep bidirectional transformers.",
             {"year": 2019, "authors": ["Devlin, Jacob", "Chang, Ming-Wei"],
              "categories": ["cs.CL"]}),
    Document("muller", "A study of graphs", "Graphs in physics.",
             {"year": 2020, "authors": ["Klaus-Robert Müller"], "categories": ["physics.comp-ph"]}),
    Document("plain", "Untagged paper", "No metadata at all."),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = Engine(tmp_path_factory.mktemp("filters") / "idx", embedder=HashingEmbedder())
    engine.build(PAPERS)
    return engine


def found(engine, **parts) -> set[str]:
    where = Filter.parse(parts.get("year"), tuple(parts.get("categories", ())),
                         tuple(parts.get("authors", ())), tuple(parts.get("tags", ())))
    return {hit.id for hit in engine.search("graph attention transformers", k=10,
                                            mode="lexical", where=where)} | \
        {hit.id for hit in engine.search("graph attention transformers", k=10, mode="dense",
                                         where=where)}


@pytest.mark.parametrize("author, expected", [
    ("Velickovic", {"gat"}), ("velickovic", {"gat"}), ("Petar Velickovic", {"gat"}),
    ("Pietro Lio", {"gat"}), ("LIÒ", {"gat"}), ("Muller", {"muller"}),
    ("Klaus-Robert Muller", {"muller"}), ("Aidan Gomez", {"attn"}), ("A. Gomez", {"attn"}),
    ("Gomez, Aidan", {"attn"}), ("Aidan N. Gomez", {"attn"}), ("Devlin, Jacob", {"bert"}),
    ("Jacob Devlin", {"bert"}), ("J Devlin", {"bert"}), ("Ming-Wei Chang", {"bert"}),
])
def test_author_names_match_in_any_form(engine, author, expected):
    assert found(engine, authors=[author]) == expected


def test_a_different_first_name_does_not_match(engine):
    with pytest.raises(QueryError, match="no paper .* matches --author 'Maria Gomez'"):
        found(engine, authors=["Maria Gomez"])


@pytest.mark.parametrize("category, expected", [
    ("cs.CL", {"attn", "bert"}), ("cs.cl", {"attn", "bert"}), ("CS.CL", {"attn", "bert"}),
    ("cs", {"attn", "bert", "gat"}), ("cs.*", {"attn", "bert", "gat"}),
    ("physics", {"muller"}), ("stat.ml", {"gat"}),
])
def test_categories_match_in_any_case_and_by_prefix(engine, category, expected):
    assert found(engine, categories=[category]) == expected


def test_tags_match_in_any_case(engine):
    assert found(engine, tags=["transformers"]) == {"attn"}
    assert found(engine, tags=["Must Read"]) == {"attn"}


def test_a_filter_that_matches_no_paper_says_so_with_the_closest_values(engine):
    with pytest.raises(QueryError) as raised:
        found(engine, authors=["Velikovic"])
    message = str(raised.value)
    assert "no paper in" in message and "--author 'Velikovic'" in message
    assert "closest authors: 'Petar Veličković'" in message
    with pytest.raises(QueryError, match="--category 'cs.XX'.*closest categories: 'cs.*'"):
        found(engine, categories=["cs.XX"])


def test_parts_that_each_match_but_not_together_say_so(engine):
    with pytest.raises(QueryError, match="no paper in .* matches all of these filters together"):
        found(engine, year="2017", authors=["Devlin"])


def test_name_parts_read_both_orders_and_fold_accents():
    assert name_parts("Petar Veličković") == ("petar", "velickovic")
    assert name_parts("Devlin, Jacob") == ("jacob", "devlin")
    assert name_parts("Gomez, Aidan N.") == ("aidan n", "gomez")
    assert name_parts("Laurens van der Maaten") == ("laurens van der", "maaten")
    assert name_parts("Plato") == ("", "plato")
    assert author_keys("Aidan N. Gomez") >= {"gomez", "aidan gomez", "a gomez", "aidan n gomez"}


@pytest.mark.parametrize("parts, flag", [({"authors": ("!!!",)}, "--author"),
                                         ({"tags": ("??",)}, "--tag")])
def test_a_name_or_tag_with_no_letters_is_refused_as_such(engine, parts, flag):
    with pytest.raises(QueryError, match=f"{flag} .* has no letters or digits"):
        found(engine, **parts)


def test_facets_count_the_papers_with_each_value(engine):
    facets = engine.facets()
    assert [(f.value, f.count) for f in facets["year"]] == [
        ("2017", 1), ("2018", 1), ("2019", 1), ("2020", 1)]
    assert (facets["category"][0].value, facets["category"][0].count) == ("cs.CL", 2)
    assert {f.value for f in facets["tag"]} == {"Transformers", "must read"}
    authors = {f.value: f.count for f in engine.facets(["author"])["author"]}
    assert authors["Aidan N. Gomez"] == 1 and len(authors) == 8
    with pytest.raises(QueryError, match="no facet 'colour'"):
        engine.facets(["colour"])


@pytest.mark.parametrize("text", ["0000", "2000..0000", "0000..2000"])
def test_year_zero_is_refused_not_taken_for_no_bound(text):
    with pytest.raises(QueryError, match="0000 is not a year"):
        Filter.parse(text)
