from semsearch.documents import Document, Hit, normalise_text, title_id


def test_title_id_is_stable_and_ignores_case_spacing_and_punctuation():
    assert title_id("MM-Embed: Universal Retrieval") == title_id("mm embed   universal retrieval!")
    assert title_id("A paper") != title_id("Another paper")
    assert title_id("A paper").startswith("title-")


def test_content_key_matches_same_text_with_other_ids():
    a = Document("1", "A Title", "Some  abstract.")
    b = Document("2", "a title", "Some abstract")
    c = Document("1", "A Title", "Another abstract.")
    assert a.content_key == b.content_key
    assert a.content_key != c.content_key


def test_text_joins_title_and_abstract_as_beir_does():
    assert Document("1", "Title", "Abstract.").text == "Title Abstract."
    assert Document("1", "", "Abstract only.").text == "Abstract only."


def test_normalise_text_folds_unicode_forms():
    assert normalise_text("Ｆｕｌｌｗｉｄｔｈ  Ünïcode") == normalise_text("fullwidth ünïcode")


def test_hit_json_puts_metadata_after_the_core_fields():
    hit = Hit(1, "x", "T", 0.51234567, metadata={"year": 2023, "authors": ["A B"]})
    assert hit.to_json() == {"rank": 1, "id": "x", "title": "T", "score": 0.512346,
                             "year": 2023, "authors": ["A B"], "link": None, "abstract": ""}
