import json

import pytest

from semsearch.documents import title_id
from semsearch.errors import InputError
from semsearch.readers import ReadOptions, detect_format, read_documents

from conftest import DATA, SHARED, needs_shared, write

FEED_PAGE = """new

Get trending papers in your email inbox!

Subscribe

Daily Papers

by AK and the research community

Mar 11

First Paper Title

The first abstract, long enough to be an abstract: it goes on for more than thirty words, as an \
abstract does, describing what was done and found, with a sentence or two more after this one.

Second Paper: A Study

The second abstract. It is shorter, but still two sentences of fifteen words or more in all.
"""


def read(path, **options):
    return list(read_documents([path], options=ReadOptions(**options)))


# -- feed pages ---------------------------------------------------------------------------

def test_feed_page_skips_chrome_and_pairs_titles_with_abstracts(tmp_path):
    docs = read(write(tmp_path / "page.txt", FEED_PAGE))
    assert [d.title for d in docs] == ["First Paper Title", "Second Paper: A Study"]
    assert docs[1].abstract.startswith("The second abstract.")
    assert docs[0].id == title_id("First Paper Title")


def test_feed_ids_are_the_same_on_every_read(tmp_path):
    path = write(tmp_path / "page.txt", FEED_PAGE)
    assert [d.id for d in read(path)] == [d.id for d in read(path)]


def test_sample_pages_hold_165_pairs_of_148_papers(sample_paths):
    docs = list(read_documents(sample_paths))
    assert len(docs) == 165
    assert len({d.id for d in docs}) == 148
    assert all(len(d.abstract) >= 1378 for d in docs)


def test_feed_line_followed_by_no_abstract_is_page_chrome(tmp_path):
    path = write(tmp_path / "page.txt", FEED_PAGE + "\nLoad more papers\n")
    assert [d.title for d in read(path)] == ["First Paper Title", "Second Paper: A Study"]


def test_feed_abstract_without_title_names_its_line(tmp_path):
    path = write(tmp_path / "page.txt", "new\n\n" + "word " * 200 + "\n")
    with pytest.raises(InputError, match=r"page\.txt:3: a paragraph of \d+ characters with "
                                         r"no title line before it"):
        read(path)


PAGES = DATA / "pages"


def read_page(name: str) -> tuple[list, list[str]]:
    """The papers of a saved page, and the line numbers of what was read as neither a paper
    nor page chrome."""
    options = ReadOptions()
    docs = list(read_documents([PAGES / name], options=options))
    return docs, [problem.line for problem in options.unread]


def test_a_feed_page_with_comments_lines_keeps_the_titles_and_a_one_sentence_abstract():
    docs, unread = read_page("daily-feed-with-comments.txt")
    assert [d.title for d in docs] == [
        "Graph Retrieval Augmented Generation for Long Scientific Documents",
        "Sparse Mixtures of Experts Are Robust Learners",
        "Self-Correcting Code Generation with Execution Feedback"]
    assert docs[0].id == title_id(docs[0].title)
    assert docs[0].metadata["comments"] == "12 pages, 4 figures"
    assert docs[1].abstract == ("We show that sparse mixtures of experts resist label noise "
                                "better than dense models.")
    assert docs[1].metadata["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert docs[1].metadata["journal_ref"] == "Proceedings of the Example Conference 2024"
    assert unread == [37]  # "See all papers from this week": reported, not a paper


def test_an_arxiv_listing_gives_ids_authors_and_categories_never_subjects_as_titles():
    docs, unread = read_page("arxiv-list-new.txt")
    assert [(d.id, d.title) for d in docs] == [
        ("2412.01017", "Graph Retrieval Augmented Generation for Long Scientific Documents"),
        ("2412.01023", "A Short Note on Tokenizer Drift"),
        ("2412.00981", "Sparse Mixtures of Experts Are Robust Learners")]
    first = docs[0]
    assert first.link == "https://arxiv.org/abs/2412.01017"
    assert first.metadata["authors"] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert first.metadata["categories"] == ["cs.CL", "cs.IR"]
    assert first.metadata["year"] == 2024
    assert first.abstract.startswith("Retrieval-augmented generation over long")
    assert docs[1].abstract.startswith("We show that tokenizers")  # one sentence
    assert docs[2].metadata["categories"] == ["cs.LG", "cs.CL"]
    assert unread == []


def test_an_arxiv_listing_without_abstracts_gives_its_papers_by_title():
    docs, unread = read_page("arxiv-list-recent.txt")
    assert [(d.id, d.title, d.abstract) for d in docs] == [
        ("2412.04567", "Prompt Compression for Retrieval Augmented Generation", ""),
        ("2412.04321", "Multilingual Evaluation of Summarisation Metrics", "")]
    assert docs[1].metadata["categories"] == ["cs.CL", "cs.AI"]
    assert unread == []


def test_an_arxiv_abstract_page_reads_as_one_paper_with_what_follows_its_abstract():
    docs, unread = read_page("arxiv-abs.txt")
    [paper] = docs
    assert (paper.id, paper.title) == ("2412.01017", "Graph Retrieval Augmented Generation for "
                                                     "Long Scientific Documents")
    assert paper.abstract.startswith("Retrieval-augmented generation") and \
        paper.abstract.endswith("at the same cost.")
    assert paper.metadata["categories"] == ["cs.CL", "cs.IR"]
    assert paper.metadata["comments"] == "12 pages, 4 figures"
    assert unread == []


def test_the_same_paper_from_a_listing_and_its_abstract_page_is_one_paper():
    listed = {d.id: d for d in read_page("arxiv-list-new.txt")[0]}
    [page] = read_page("arxiv-abs.txt")[0]
    assert listed[page.id].content_key == page.content_key


def test_a_title_with_nothing_after_it_is_reported_with_its_line(tmp_path):
    options = ReadOptions()
    path = write(tmp_path / "page.txt", FEED_PAGE + "\nA Title Whose Abstract Was Not Copied\n")
    assert len(list(read_documents([path], options=options))) == 2
    [passage] = options.unread
    assert passage.line == 21 and "A Title Whose Abstract Was Not Copied" in str(passage)


# -- JSONL ------------------------------------------------------------------------------------

def test_jsonl_with_common_field_names_and_metadata(tmp_path):
    path = write(tmp_path / "papers.jsonl", "\n".join(json.dumps(r) for r in [
        {"paper_id": "p1", "title": "T1", "abstract": "A1", "year": "2021",
         "authors": "Ada Lovelace and Alan Turing", "categories": "cs.CL cs.IR"},
        {"id": "p2", "title": "T2", "summary": "A2", "authors": ["Grace Hopper"]},
    ]))
    first, second = read(path)
    assert (first.id, first.title, first.abstract) == ("p1", "T1", "A1")
    assert first.metadata == {"year": 2021, "authors": ["Ada Lovelace", "Alan Turing"],
                              "categories": ["cs.CL", "cs.IR"]}
    assert (second.id, second.abstract, second.metadata) == ("p2", "A2", {"authors": ["Grace Hopper"]})


def test_jsonl_field_flags_map_other_names(tmp_path):
    path = write(tmp_path / "x.jsonl", json.dumps({"ref": "r1", "heading": "H", "blurb": "B"}))
    docs = read(path, id_field="ref", title_field="heading", abstract_field="blurb")
    assert (docs[0].id, docs[0].title, docs[0].abstract) == ("r1", "H", "B")


def test_jsonl_without_id_derives_it_from_the_title(tmp_path):
    path = write(tmp_path / "x.jsonl", json.dumps({"title": "Only a Title", "abstract": "A"}))
    assert read(path)[0].id == title_id("Only a Title")


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.jsonl",
                 json.dumps({"id": "1", "title": "T", "abstract": "A"}) + "\n{not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not valid JSON"):
        read(path)


def test_skip_bad_carries_on_and_counts(tmp_path):
    good = json.dumps({"id": "1", "title": "T", "abstract": "A"})
    path = write(tmp_path / "bad.jsonl", f"{good}\n{{oops\n[1, 2]\n{good.replace('1', '2')}\n")
    options = ReadOptions(skip_bad=True)
    docs = list(read_documents([path], options=options))
    assert [d.id for d in docs] == ["1", "2"]
    assert [e.line for e in options.skipped] == [2, 3]


def test_a_record_without_an_abstract_field_is_read_by_its_title(tmp_path):
    path = write(tmp_path / "x.jsonl", json.dumps({"id": "1", "title": "T", "body_text": "B"}))
    assert [(d.title, d.abstract) for d in read(path)] == [("T", "")]


def test_a_field_named_by_flag_must_be_there(tmp_path):
    path = write(tmp_path / "x.jsonl", json.dumps({"id": "1", "title": "T", "abstract": "A"}))
    with pytest.raises(InputError, match=r"x\.jsonl:1: no abstract field 'body_text'"):
        read(path, abstract_field="body_text")


def test_bytes_that_are_not_utf8_name_the_line(tmp_path):
    good = json.dumps({"id": "1", "title": "T", "abstract": "A"}).encode()
    path = write(tmp_path / "latin.jsonl", good + b"\n" + b'{"id": "2", "title": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"latin\.jsonl:2: bytes that are not UTF-8"):
        read(path)


# -- CSV --------------------------------------------------------------------------------------

def test_csv_with_quoted_commas_and_newlines(tmp_path):
    path = write(tmp_path / "papers.csv",
                 'id,title,abstract,year\n'
                 'a1,"Graphs, and more","An abstract\nover two lines",2019\n'
                 'a2,Plain,Short abstract,\n')
    docs = read(path)
    assert [d.id for d in docs] == ["a1", "a2"]
    assert docs[0].title == "Graphs, and more"
    assert docs[0].abstract == "An abstract over two lines"
    assert docs[0].metadata == {"year": 2019}


def test_csv_without_needed_columns_names_the_header(tmp_path):
    path = write(tmp_path / "x.csv", "id,name_of_paper,content\n1,T,A\n")
    with pytest.raises(InputError, match=r"x\.csv:1: no title or abstract column"):
        read(path)


def test_csv_row_with_wrong_column_count_names_its_line(tmp_path):
    path = write(tmp_path / "x.csv", "id,title,abstract\n1,T,A\n2,T2\n")
    with pytest.raises(InputError, match=r"x\.csv:3: expected 3 columns"):
        read(path)


# -- BEIR and arXiv ---------------------------------------------------------------------------

def test_beir_corpus_keeps_its_ids(tmp_path):
    path = write(tmp_path / "corpus.jsonl", "\n".join(json.dumps(r) for r in [
        {"_id": "4983", "title": "Microstructure", "text": "Alterations.", "metadata": {}},
        {"_id": "5836", "title": "", "text": "No title here."},
    ]))
    assert detect_format(path) == "beir"
    docs = read(path)
    assert [d.id for d in docs] == ["4983", "5836"]
    assert docs[1].text == "No title here."


def test_beir_empty_document_is_reported(tmp_path):
    path = write(tmp_path / "corpus.jsonl", json.dumps({"_id": "471", "title": "", "text": ""}))
    with pytest.raises(InputError, match=r"corpus\.jsonl:1: document 471: no title and no abstract"):
        read(path)


@needs_shared
def test_scifact_corpus_reads_whole():
    docs = list(read_documents([SHARED / "eval" / "scifact" / "corpus.jsonl"]))
    assert len(docs) == 5183
    assert docs[0].id == "4983"


ARXIV_RECORD = {
    "id": "0704.0001", "submitter": "Pavel Nadolsky",
    "authors": "C. Bal\\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan",
    "title": "Calculation of prompt diphoton production cross sections at Tevatron and\n  LHC energies",
    "comments": "37 pages", "journal-ref": None, "doi": "10.1103/PhysRevD.76.013009",
    "report-no": None, "categories": "hep-ph", "license": None,
    "abstract": "  A fully differential calculation in perturbative quantum chromodynamics is\npresented.\n",
    "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"},
                 {"version": "v2", "created": "Tue, 24 Jul 2007 20:10:27 GMT"}],
    "update_date": "2008-11-13",
    "authors_parsed": [["Balázs", "C.", ""], ["Berger", "E. L.", ""],
                       ["Nadolsky", "P. M.", ""], ["Yuan", "C. -P.", ""]],
}


def test_arxiv_snapshot_keeps_year_categories_and_authors(tmp_path):
    other = dict(ARXIV_RECORD, id="0704.0002", categories="math.CO cs.CG",
                 versions=[], authors_parsed=[], authors="Ileana Streinu and Louis Theran")
    path = write(tmp_path / "arxiv-metadata-oai-snapshot.json",
                 json.dumps(ARXIV_RECORD) + "\n" + json.dumps(other) + "\n")
    assert detect_format(path) == "arxiv"
    first, second = read(path)
    assert first.id == "0704.0001"
    assert first.title.startswith("Calculation of prompt diphoton production cross sections at Tevatron and LHC")
    assert first.abstract.startswith("A fully differential calculation")
    assert first.metadata == {"year": 2007, "categories": ["hep-ph"],
                              "authors": ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]}
    assert second.metadata == {"year": 2008, "categories": ["math.CO", "cs.CG"],
                               "authors": ["Ileana Streinu", "Louis Theran"]}


def test_arxiv_record_without_title_or_abstract_names_line(tmp_path):
    bad = {k: v for k, v in ARXIV_RECORD.items() if k not in ("abstract", "title")}
    path = write(tmp_path / "snap.json", json.dumps(ARXIV_RECORD) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError, match=r"snap\.json:2: paper 0704\.0001: no title and no abstract"):
        list(read_documents([path], format="arxiv"))


def _snapshot_with_bad_lines(tmp_path, count=40):
    lines = []
    for i in range(count):
        record = dict(ARXIV_RECORD, id=f"0704.{i:04d}", title=f"Paper {i}",
                      abstract=f"Abstract of paper {i}, with an accent: Balázs.")
        lines.append(json.dumps(record, ensure_ascii=False))
    lines[5] = "{not json"
    lines[17] = json.dumps({k: v for k, v in ARXIV_RECORD.items() if k not in ("title", "abstract")})
    lines[23] = ""
    lines[31] = json.dumps(dict(ARXIV_RECORD, id="", abstract="  "))
    return write(tmp_path / "snap.json", "\n".join(lines) + "\n")


def test_arxiv_read_by_worker_processes_is_the_one_core_reading(tmp_path, monkeypatch):
    from semsearch.readers import arxiv, parallel

    path = _snapshot_with_bad_lines(tmp_path)
    monkeypatch.setattr(parallel, "CHUNK_LINES", 3)  # many chunks, so order is really tested
    one_core = ReadOptions(skip_bad=True)
    expected = list(arxiv.read(path, one_core))
    in_workers = ReadOptions(skip_bad=True)
    found = list(parallel.documents_in_workers(path, arxiv.to_document, in_workers, workers=2))
    assert found == expected and len(found) == 36
    assert [doc.duplicate_keys for doc in found] == [
        doc.duplicate_keys for doc in arxiv.read(path, ReadOptions(skip_bad=True))]
    assert [str(e) for e in in_workers.skipped] == [str(e) for e in one_core.skipped]
    assert [e.line for e in in_workers.skipped] == [6, 18, 32]
    with pytest.raises(InputError, match=r"snap\.json:6: not valid JSON"):
        list(parallel.documents_in_workers(path, arxiv.to_document, ReadOptions(), workers=2))


def test_large_arxiv_files_are_read_in_workers(tmp_path, monkeypatch):
    from semsearch.readers import parallel

    path = _snapshot_with_bad_lines(tmp_path)
    called = []
    real = parallel.documents_in_workers
    monkeypatch.setattr(parallel, "documents_in_workers",
                        lambda *args, **kwargs: called.append(True) or real(*args, **kwargs))
    monkeypatch.setattr(parallel, "PARALLEL_FROM_BYTES", path.stat().st_size)
    assert len(list(read_documents([path], format="arxiv", options=ReadOptions(skip_bad=True)))) == 36
    assert called == ([True] if parallel.worth_parallel(path) else [])


# -- detection and errors ---------------------------------------------------------------------

def test_detection_by_extension_and_content(tmp_path, sample_paths):
    assert detect_format(sample_paths[0]) == "feed"
    assert detect_format(write(tmp_path / "a.csv", "id,title,abstract\n")) == "csv"
    assert detect_format(write(tmp_path / "a.jsonl", '{"title": "t", "abstract": "a"}\n')) == "jsonl"


def test_format_override_wins(tmp_path):
    path = write(tmp_path / "papers.data", json.dumps({"id": "1", "title": "T", "abstract": "A"}))
    assert [d.id for d in read_documents([path], format="jsonl")] == ["1"]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="nothere.jsonl: no such file"):
        list(read_documents([tmp_path / "nothere.jsonl"]))


# -- inputs that used to lose papers while exiting 0 ------------------------------------------

def test_csv_with_an_unterminated_quote_is_a_bad_record_on_its_line(tmp_path):
    path = write(tmp_path / "x.csv", 'id,title,abstract\n1,T,"An abstract\n2,T2,Another\n'
                                     '3,T3,A third\n')
    with pytest.raises(InputError, match=r"x\.csv:2: .*quote"):
        read(path)


def test_csv_field_of_several_hundred_kilobytes_is_read_and_cut_to_its_bound(tmp_path):
    from semsearch.documents import MAX_ABSTRACT_CHARS

    abstract = "word " * 60_000
    path = write(tmp_path / "big.csv", f'id,title,abstract\n1,Big,"{abstract}"\n2,T,A\n')
    options = ReadOptions()
    docs = list(read_documents([path], options=options))
    assert [d.id for d in docs] == ["1", "2"] and len(docs[0].abstract) == MAX_ABSTRACT_CHARS
    assert options.cut == 1


BOM = "\ufeff"


@pytest.mark.parametrize("name, content, first_id", [
    ("p.csv", "id,title,abstract\nc1,T,A\n", "c1"),
    ("p.jsonl", '{"id": "j1", "title": "T", "abstract": "A"}\n', "j1"),
    ("corpus.jsonl", '{"_id": "b1", "title": "T", "text": "A"}\n', "b1"),
    ("p.bib", "@article{key1, title={T}, abstract={A}}\n", "key1"),
    ("snap.json", json.dumps(ARXIV_RECORD) + "\n", "0704.0001"),
])
def test_a_byte_order_mark_is_accepted_by_every_reader(tmp_path, name, content, first_id):
    path = write(tmp_path / name, BOM + content)
    assert [d.id for d in read(path)] == [first_id]


def test_a_byte_order_mark_does_not_make_a_feed_page_gain_a_paper(tmp_path):
    docs = read(write(tmp_path / "page.txt", BOM + FEED_PAGE))
    assert [d.title for d in docs] == ["First Paper Title", "Second Paper: A Study"]


@pytest.mark.parametrize("name, content", [
    ("x.jsonl", '{"title": "", "abstract": "First."}\n{"title": "", "abstract": "Second."}\n'),
    ("x.csv", "title,abstract\n,First.\n,Second.\n"),
])
def test_records_with_neither_id_nor_title_are_bad_records(tmp_path, name, content):
    path = write(tmp_path / name, content)
    options = ReadOptions(skip_bad=True)
    assert list(read_documents([path], options=options)) == []
    assert [e.line for e in options.skipped] == [1, 2] if name.endswith("jsonl") else [2, 3]
    assert all("no id" in e.reason for e in options.skipped)


def test_a_null_beir_id_is_a_bad_record(tmp_path):
    path = write(tmp_path / "corpus.jsonl", '{"_id": "ok", "title": "T", "text": "A"}\n'
                                            '{"_id": null, "title": "T2", "text": "B"}\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl:2: no _id"):
        read(path)


@pytest.mark.parametrize("name, content, fmt", [
    ("papers.jsonl.gz", '{"id": "g1", "title": "T", "abstract": "A"}\n', "jsonl"),
    ("arxiv-metadata-oai-snapshot.json.gz", json.dumps(ARXIV_RECORD) + "\n", "arxiv"),
    ("corpus.jsonl.gz", '{"_id": "b1", "title": "T", "text": "A"}\n', "beir"),
    ("papers.csv.gz", "id,title,abstract\nc1,T,A\n", "csv"),
])
def test_gzip_compressed_inputs_are_read(tmp_path, name, content, fmt):
    import gzip

    path = tmp_path / name
    path.write_bytes(gzip.compress(content.encode()))
    assert detect_format(path) == fmt
    assert len(read(path)) == 1


# -- papers without an abstract, real exports -----------------------------------------------

@pytest.mark.parametrize("name, content", [
    ("p.jsonl", '{"id": "a", "title": "Only a title"}\n{"id": "b", "title": "T", "abstract": ""}\n'),
    ("p.csv", "id,title,abstract\na,Only a title,\nb,T,\n"),
    ("corpus.jsonl", '{"_id": "a", "title": "Only a title", "text": ""}\n'
                     '{"_id": "b", "title": "T", "text": ""}\n'),
    ("p.bib", "@article{a, title={Only a title}}\n@article{b, title={T}, abstract={}}\n"),
    ("snap.json", json.dumps(dict(ARXIV_RECORD, id="a", title="Only a title", abstract=""))
     + "\n" + json.dumps({k: v for k, v in dict(ARXIV_RECORD, id="b", title="T").items()
                          if k != "abstract"}) + "\n"),
])
def test_a_paper_with_a_title_and_no_abstract_is_read_by_its_title(tmp_path, name, content):
    docs = read(write(tmp_path / name, content))
    assert [(d.id, d.abstract) for d in docs] == [("a", ""), ("b", "")]
    assert docs[0].text == "Only a title"


@pytest.mark.parametrize("name, content", [
    ("p.jsonl", '{"id": "a", "title": "", "abstract": ""}\n'),
    ("p.csv", "id,title,abstract\na,,\n"),
    ("corpus.jsonl", '{"_id": "a", "title": "", "text": ""}\n'),
    ("p.bib", "@article{a, abstract={}}\n"),
    ("snap.json", json.dumps(dict(ARXIV_RECORD, id="a", title="", abstract="")) + "\n"),
])
def test_a_record_with_neither_title_nor_abstract_is_a_bad_record(tmp_path, name, content):
    with pytest.raises(InputError, match=r":[12]: .*no title and no abstract"):
        read(write(tmp_path / name, content))


ZOTERO_COLUMNS = [
    "Key", "Item Type", "Publication Year", "Author", "Title", "Publication Title", "ISBN",
    "ISSN", "DOI", "Url", "Abstract Note", "Date", "Date Added", "Date Modified", "Access Date",
    "Pages", "Num Pages", "Issue", "Volume", "Number Of Volumes", "Journal Abbreviation",
    "Short Title", "Series", "Series Number", "Series Text", "Series Title", "Publisher",
    "Place", "Language", "Rights", "Type", "Archive", "Archive Location", "Library Catalog",
    "Call Number", "Extra", "Notes", "File Attachments", "Link Attachments", "Manual Tags",
    "Automatic Tags"]
ZOTERO_ROWS = [
    {"Key": "ABCD1234", "Item Type": "journalArticle", "Publication Year": "2017",
     "Author": "Vaswani, Ashish; Shazeer, Noam; Gomez, Aidan N.",
     "Title": "Attention is all you need", "Publication Title": "NeurIPS",
     "DOI": "10.5555/3295222.3295349", "Url": "https://example.org/attn",
     "Abstract Note": "The dominant sequence transduction models are based on recurrent "
                      "networks.", "Date": "2017", "Date Added": "2023-01-02 10:00:00",
     "Manual Tags": "Transformers; Must read",
     "Automatic Tags": "Computer Science - Computation and Language"},
    {"Key": "EFGH5678", "Item Type": "conferencePaper", "Publication Year": "2019",
     "Author": "Devlin, Jacob", "Title": "BERT", "Publication Title": "NAACL", "Date": "2019"},
]


def zotero_csv(path):
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ZOTERO_COLUMNS, quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(ZOTERO_ROWS)
    return path


def test_a_zotero_csv_export_reads_with_no_flags(tmp_path):
    attention, bert = read(zotero_csv(tmp_path / "zotero.csv"))
    assert attention.id == "10.5555/3295222.3295349" and bert.id == "EFGH5678"
    assert attention.title == "Attention is all you need"
    assert attention.abstract.startswith("The dominant sequence transduction")
    assert attention.metadata["year"] == 2017
    assert attention.metadata["authors"] == ["Ashish Vaswani", "Noam Shazeer",
                                             "Aidan N. Gomez"]
    assert attention.metadata["aliases"] == ["ABCD1234"]  # its Zotero key, beside the DOI
    assert attention.metadata["tags"] == ["Transformers", "Must read",
                                          "Computer Science - Computation and Language"]
    assert bert.abstract == "" and bert.metadata == {"year": 2019, "authors": ["Jacob Devlin"]}


def test_bibtex_keywords_and_jsonl_tags_are_tags(tmp_path):
    [bib] = read(write(tmp_path / "p.bib", "@article{k, title={T}, abstract={A}, "
                                            "keywords={graphs, Deep Learning}}\n"))
    assert bib.metadata["tags"] == ["graphs", "Deep Learning"]
    [record] = read(write(tmp_path / "p.jsonl", '{"id": "j", "title": "T", "abstract": "A", '
                                                 '"keywords": ["x", "y"], "categories": "cs.CL"}\n'))
    assert record.metadata["tags"] == ["x", "y"] and record.metadata["categories"] == ["cs.CL"]


# -- feed pages as browsers copy them -------------------------------------------------------

ABSTRACT = ("We study a problem at length and find that a simple method works well. We explain "
            "why it does so in several settings, with experiments on many benchmarks and careful "
            "ablations, and release our code.")


def feed_variant(tmp_path, lines, crlf=False) -> list:
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    return read(write(tmp_path / "page.txt", text.encode()))


def test_a_feed_page_with_unknown_chrome_and_upvote_counts_gains_no_junk_paper(tmp_path):
    docs = feed_variant(tmp_path, [
        "Trending Papers", "", "by AK and the research community", "", "Submitted by akhaliq",
        "", "First Paper Title", "", "42", "", ABSTRACT, "", "▲ 17", "", "Load more",
        "Second Paper: A Study", ABSTRACT + " Second.", "", "Upvote", "128", "Sign in"])
    assert [d.title for d in docs] == ["First Paper Title", "Second Paper: A Study"]
    assert [d.abstract for d in docs] == [ABSTRACT, ABSTRACT + " Second."]


def test_the_sample_pages_read_the_same_with_crlf_and_extra_chrome(tmp_path, sample_paths):
    for number, page in enumerate(sample_paths):
        original = list(read_documents([page]))
        lines = page.read_text(encoding="utf-8").splitlines()
        noisy = ["Trending Papers", "Daily Papers", "123"]
        for line in lines:
            noisy.append(line)
            if len(line) > 400:                 # after each abstract: an upvote count and chrome
                noisy += ["", "87", "Submitted by someone", ""]
        folder = tmp_path / str(number)
        assert [(d.title, d.abstract) for d in feed_variant(folder, noisy, crlf=True)] == \
            [(d.title, d.abstract) for d in original]
