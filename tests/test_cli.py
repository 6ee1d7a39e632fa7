"""End to end through the ``semsearch`` command, with the real bundled model."""

import json

import pytest
from click.testing import CliRunner

from semsearch.cli import format_table, main
from semsearch.documents import Hit

from conftest import DATA, write


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + str(result.exception)
    return result


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory):
    """The sample corpus indexed once through the CLI, shared by the read-only tests."""
    path = tmp_path_factory.mktemp("cli") / "sample"
    result = run("index", "--sample", "--index", path)
    assert "Indexed 148 papers" in result.output
    assert "read 165, duplicates dropped 17" in result.output
    return path


def test_search_prints_a_table_of_relevant_papers(sample_index):
    result = run("search", "retrieval augmented generation with knowledge graphs",
                 "--index", sample_index, "-k", "5")
    lines = result.output.splitlines()
    assert lines[0].split() == ["rank", "score", "title"]
    assert lines[1].split()[0] == "1"
    assert "Retrieval-Augmented Generation" in result.output


def test_search_json_has_one_object_per_line(sample_index):
    result = run("search", "multimodal benchmark", "--index", sample_index, "-k", "3", "--json")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["rank"] for r in records] == [1, 2, 3]
    assert all({"rank", "id", "title", "score"} <= r.keys() for r in records)
    assert records[0]["score"] >= records[2]["score"]


def test_like_by_title_leaves_the_paper_out(sample_index):
    title = "MM-Embed: Universal Multimodal Retrieval with Multimodal LLMs"
    result = run("like", title.lower(), "--index", sample_index, "--json")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == 10
    assert title not in [r["title"] for r in records]


def test_like_unknown_title_suggests_and_fails(sample_index):
    result = run("like", "MM Embed universal multimodel retreival", "--index", sample_index,
                 ok=False)
    assert result.exit_code == 1
    assert "closest titles: 'MM-Embed: Universal Multimodal Retrieval with Multimodal LLMs'" \
        in result.output


def test_info_describes_the_index(sample_index):
    details = json.loads(run("info", "--index", sample_index, "--json").output)
    assert details["count"] == 148 and details["model"] == "all-MiniLM-L6-v2"
    assert details["dimension"] == 384 and details["index_type"] == "exact"
    assert "papers         148" in run("info", "--index", sample_index).output


def test_search_without_an_index_explains(tmp_path):
    result = run("search", "anything", "--index", tmp_path / "none", ok=False)
    assert result.exit_code == 1
    assert "no index at" in result.output and "semsearch index" in result.output


def test_empty_query_is_an_error(sample_index):
    result = run("search", "  ", "--index", sample_index, ok=False)
    assert result.exit_code == 1 and "query is empty" in result.output


def test_index_needs_a_path_or_sample():
    result = run("index", ok=False)
    assert result.exit_code == 2 and "--sample" in result.output


def test_bad_jsonl_stops_with_file_and_line_and_leaves_no_index(tmp_path, index_root):
    path = write(tmp_path / "bad.jsonl", '{"id": "1", "title": "T", "abstract": "A"}\n{oops\n')
    result = run("index", path, "--index", "bad", ok=False)
    assert result.exit_code == 1
    assert "bad.jsonl:2: not valid JSON" in result.output
    assert not (index_root / "bad").exists()


def test_skip_bad_reports_the_count(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"id": "1", "title": "T", "abstract": "A"}\n{oops\n')
    result = run("index", path, "--index", tmp_path / "idx", "--skip-bad", "--json")
    report = json.loads(result.output.splitlines()[-1])
    assert report["indexed"] == 1 and report["skipped_bad"] == 1


def test_beir_corpus_gives_beir_ids(tmp_path):
    """SciFact's first 60 documents, so the test stays quick; the whole corpus is read in
    test_readers."""
    corpus = DATA / "scifact-first-60.jsonl"
    lines = corpus.read_text().splitlines()
    run("index", corpus, "--index", "scifact")
    result = run("search", "diffusion tensor imaging of newborn white matter", "--index",
                 "scifact", "--json", "-k", "3")
    ids = [json.loads(line)["id"] for line in result.output.splitlines()]
    assert set(ids) <= {json.loads(line)["_id"] for line in lines}
    assert ids[0] == "4983"


def test_help_teaches_with_examples():
    result = run("--help")
    assert "Examples:" in result.output and "semsearch like" in result.output
    assert "--skip-bad" in run("index", "--help").output


def test_table_wraps_long_titles_to_the_width():
    hits = [Hit(1, "id-1", "word " * 40, 0.5)]
    table = format_table(hits, width=60)
    assert all(len(line) <= 60 for line in table.splitlines())
    assert len(table.splitlines()) > 2


def test_lexical_mode_from_the_command_line(sample_index):
    result = run("search", "LightRAG", "--mode", "lexical", "--index", sample_index, "--json",
                 "-k", "1")
    assert "LightRAG" in json.loads(result.output)["title"]


def test_eval_reports_every_mode_on_a_tiny_collection(tmp_path):
    from test_evaluation import tiny_collection

    root = tiny_collection(tmp_path / "tiny")
    result = run("eval", root, "--mode", "all", "--json")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["mode"] for r in records] == ["lexical", "dense", "hybrid"]
    assert all(r["queries"] == 2 and 0 <= r["ndcg@10"] <= 1 for r in records)
    assert records[0]["mrr@10"] == 1.0  # BM25 ranks the relevant document first for both
    table = run("eval", root).output
    assert "ndcg@10" in table and "hybrid" in table


def test_eval_measures_an_index_of_your_own_and_refuses_one_of_another_corpus(tmp_path,
                                                                             sample_index):
    from test_evaluation import tiny_collection

    root = tiny_collection(tmp_path / "tiny")
    run("index", root / "corpus.jsonl", "--index", tmp_path / "mine", "--skip-bad")
    own = [json.loads(line) for line in run("eval", root, "--index", tmp_path / "mine",
                                            "--json").output.splitlines()]
    built = [json.loads(line) for line in run("eval", root, "--json").output.splitlines()]
    assert own == built
    other = run("eval", root, "--index", sample_index, ok=False)
    assert other.exit_code == 1 and "are not in this index" in other.output


def test_index_type_can_be_chosen_and_changed_without_re_embedding(tmp_path):
    path = tmp_path / "typed"
    run("index", "--sample", "--index", path, "--index-type", "hnsw", "--target-recall", "0.9")
    details = json.loads(run("info", "--index", path, "--json").output)
    assert details["index_type"] == "hnsw" and details["tuned_recall_at_10"] >= 0.9
    assert "efSearch" in details["index_params"]
    before = run("like", "LightRAG: Simple and Fast Retrieval-Augmented Generation", "--index",
                 path, "--json", "-k", "3").output
    result = run("reindex", "--index", path, "--index-type", "ivf")
    assert "as an index of type ivf" in result.output
    details = json.loads(run("info", "--index", path, "--json").output)
    assert details["index_type"] == "ivf" and "nprobe" in details["index_params"]
    after = run("like", "LightRAG: Simple and Fast Retrieval-Augmented Generation", "--index",
                path, "--json", "-k", "3").output
    assert [json.loads(l)["id"] for l in after.splitlines()] == \
           [json.loads(l)["id"] for l in before.splitlines()]


def test_verify_passes_then_names_the_damaged_file(tmp_path):
    path = tmp_path / "idx"
    corpus = DATA / "scifact-first-60.jsonl"
    run("index", corpus, "--index", path)
    assert "all files match" in run("verify", "--index", path).output
    live = path / (path / "CURRENT").read_text().strip()
    target = live / "segments" / "seg-000001" / "terms.npy"
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF
    target.write_bytes(bytes(data))
    result = run("verify", "--index", path, "--json", ok=False)
    assert result.exit_code == 1
    report = json.loads(result.output.splitlines()[0])
    assert report["ok"] is False and "terms.npy" in report["problems"][0]


def test_dry_run_reports_without_writing_an_index(index_root):
    result = run("index", "--sample", "--dry-run", "--json")
    report = json.loads(result.output.splitlines()[-1])
    assert (report["read"], report["duplicates"], report["indexed"]) == (165, 17, 148)
    assert report["dry_run"] is True and report["index"] is None
    assert report["without_abstract"] == 0  # every sample paper has one
    assert not index_root.exists() or not any(index_root.iterdir())


def test_dry_run_counts_only_the_papers_that_lack_an_abstract(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"id": "a", "title": "With", "abstract": "Text."}\n'
                                       '{"id": "b", "title": "Without"}\n')
    said = run("index", path, "--dry-run", "--index", tmp_path / "x").output
    assert "1 paper without an abstract" in said


def test_search_reads_a_pasted_abstract_from_a_file_or_stdin(sample_index, tmp_path):
    abstract = ("We propose a graph-based retrieval-augmented generation system that builds a "
                "knowledge graph from documents and retrieves from it to answer questions.")
    path = write(tmp_path / "abstract.txt", abstract)
    from_file = run("search", "--file", path, "--index", sample_index, "--json", "-k", "3")
    result = CliRunner().invoke(main, ["search", "--file", "-", "--index", str(sample_index),
                                       "--json", "-k", "3"], input=abstract)
    assert result.exit_code == 0 and result.output == from_file.output
    assert "RAG" in json.loads(from_file.output.splitlines()[0])["title"]
    both = run("search", "q", "--file", path, "--index", sample_index, ok=False)
    assert both.exit_code == 2 and "not both" in both.output


def test_explain_shows_a_sentence_and_matched_words(sample_index):
    result = run("search", "knowledge graph retrieval augmented generation", "-k", "2",
                 "--explain", "--index", sample_index, "--json")
    first = json.loads(result.output.splitlines()[0])
    with_text = run("search", "knowledge graph retrieval augmented generation", "-k", "2",
                    "--explain", "--index", sample_index)
    assert first["explain"]["sentence"] and "graph" in first["explain"]["matched_terms"]
    assert "words matched:" in with_text.output and first["explain"]["sentence"][:30] in \
        with_text.output.replace("\n      ", " ")


def test_like_several_papers_and_not_others(sample_index):
    mm_embed = "MM-Embed: Universal Multimodal Retrieval with Multimodal LLMs"
    vlm2vec = "VLM2Vec: Training Vision-Language Models for Massive Multimodal Embedding Tasks"
    rag = "LightRAG: Simple and Fast Retrieval-Augmented Generation"
    result = run("like", mm_embed, vlm2vec, "--not", rag, "--index", sample_index, "--json")
    titles = [json.loads(line)["title"] for line in result.output.splitlines()]
    assert len(titles) == 10 and not {mm_embed, vlm2vec, rag} & set(titles)


def test_filters_on_the_command_line(tmp_path):
    path = write(tmp_path / "refs.bib", "".join(
        f"@article{{k{i}, title={{Graph paper {i}}}, author={{Lovelace, Ada and Turing, Alan}},"
        f" year={{{2018 + i % 4}}}, abstract={{Graph neural networks, study {i}.}}}}\n"
        for i in range(12)))
    run("index", path, "--index", tmp_path / "bib")
    result = run("search", "graph neural networks", "--year", "2019..2020", "--author",
                 "turing", "--index", tmp_path / "bib", "--json", "-k", "20")
    years = [json.loads(line)["year"] for line in result.output.splitlines()]
    assert sorted(years) == [2019] * 3 + [2020] * 3
    none = run("search", "graph", "--author", "Turin", "--index", tmp_path / "bib", ok=False)
    assert none.exit_code == 1
    assert "matches --author 'Turin'; closest authors: 'Alan Turing'" in none.output
    bad = run("search", "graph", "--year", "soon", "--index", tmp_path / "bib", ok=False)
    assert bad.exit_code == 1 and "--year takes a year or a range" in bad.output


# -- reading results ------------------------------------------------------------------------

LIGHTRAG = "LightRAG: Simple and Fast Retrieval-Augmented Generation"


def test_show_prints_a_whole_paper_by_id_or_title(sample_index):
    found = json.loads(run("search", "LightRAG graph retrieval", "--index", sample_index,
                           "--json", "-k", "1").output)
    by_id = run("show", found["id"], "--index", sample_index).output
    assert LIGHTRAG in by_id and found["id"] in by_id
    assert found["abstract"][-80:] in by_id.replace("\n", " ")      # the whole abstract
    as_json = json.loads(run("show", "lightrag", "--index", sample_index, "--json").output)
    assert as_json["id"] == found["id"] and as_json["abstract"] == found["abstract"]
    missing = run("show", "no-such-paper", "--index", sample_index, ok=False)
    assert missing.exit_code == 1 and "no paper with id or title" in missing.output


def test_show_gives_the_metadata_and_a_link(tmp_path):
    path = write(tmp_path / "p.jsonl", json.dumps({
        "id": "2401.01234", "title": "A paper", "abstract": "Its abstract.", "year": 2024,
        "authors": ["Ada Lovelace", "Alan Turing"], "categories": "cs.CL cs.IR"}) + "\n" +
        json.dumps({"doi": "10.1145/3397271.3401075", "title": "Another", "abstract": "B."}))
    run("index", path, "--index", tmp_path / "idx")
    shown = json.loads(run("show", "2401.01234", "--index", tmp_path / "idx", "--json").output)
    assert shown["link"] == "https://arxiv.org/abs/2401.01234"
    assert shown["authors"] == ["Ada Lovelace", "Alan Turing"] and shown["year"] == 2024
    assert shown["categories"] == ["cs.CL", "cs.IR"]
    text = run("show", "10.1145/3397271.3401075", "--index", tmp_path / "idx").output
    assert "https://doi.org/10.1145/3397271.3401075" in text


def test_json_rows_carry_the_abstract_and_the_link(sample_index):
    rows = [json.loads(line) for line in run("search", "multimodal benchmark", "--index",
                                             sample_index, "--json", "-k", "3").output.splitlines()]
    assert all(len(row["abstract"]) > 500 and "link" in row for row in rows)


def test_the_table_never_cuts_an_id_and_shows_year_and_first_author(tmp_path):
    long_id = "10.1016/j.some-journal.2023.123456.supplementary-material-part-two"
    path = write(tmp_path / "p.jsonl", json.dumps({
        "doi": long_id, "title": "Graph networks", "abstract": "Graph neural networks.",
        "year": 2023, "authors": ["Ada Lovelace", "Alan Turing"]}) + "\n")
    run("index", path, "--index", tmp_path / "idx")
    output = run("search", "graph neural networks", "--index", tmp_path / "idx").output
    assert long_id in output and "2023" in output and "Lovelace et al." in output


def test_like_takes_a_papers_short_name(sample_index):
    rows = run("like", "MM-Embed", "--index", sample_index, "--json", "-k", "3").output
    assert len(rows.splitlines()) == 3 and "MM-Embed" not in rows
    typo = run("like", "MM-Embd", "--index", sample_index, ok=False)
    assert typo.exit_code == 1
    assert "closest titles: 'MM-Embed: Universal Multimodal Retrieval" in typo.output


def test_a_paper_cannot_be_liked_and_not_liked(sample_index):
    result = run("like", LIGHTRAG, "--not", "lightrag", "--index", sample_index, ok=False)
    assert result.exit_code == 1 and "both" in result.output


def test_index_help_lists_every_format():
    from semsearch.readers import FORMATS

    text = run("index", "--help").output
    assert all(name in text for name in FORMATS) and "bibtex" in text.lower()


# -- scores and explanations ----------------------------------------------------------------

def test_hybrid_scores_read_the_same_across_queries(sample_index):
    def top(query, *options):
        return json.loads(run("search", query, "--index", sample_index, "--json", "-k", "1",
                              *options).output.splitlines()[0])

    nonsense = top("medieval french troubadour poetry")
    relevant = top("retrieval augmented generation with knowledge graphs")
    assert nonsense["cosine"] < 0.3 < 0.6 < relevant["cosine"]
    assert 0 < nonsense["score"] <= 1 and 0 < relevant["score"] <= 1


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_the_score_column_falls_with_the_rank(sample_index, mode):
    """The README's own example once read 0.624, 0.534, 0.624 down the ranks: the table
    showed the cosine while hybrid ranked by the fused score."""
    query = "retrieval augmented generation with knowledge graphs"
    rows = [json.loads(line) for line in run("search", query, "--index", sample_index, "--json",
                                             "--mode", mode).output.splitlines()]
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    assert all(("cosine" in row) == (mode != "lexical") for row in rows)
    table = run("search", query, "--index", sample_index, "--mode", mode).output.splitlines()
    shown = [float(line.split()[1]) for line in table[1:] if line[:4].strip().isdigit()]
    assert shown == sorted(shown, reverse=True) and len(shown) == 10


def test_a_filter_that_leaves_one_paper_still_scores_it(tmp_path):
    path = write(tmp_path / "p.jsonl", "".join(json.dumps({
        "id": f"p{i}", "title": title, "abstract": f"We study {title.lower()} in depth.",
        "year": 2020 + i}) + "\n" for i, title in enumerate(
        ["Graph neural networks for molecules", "Protein structure prediction",
         "Speech recognition with transformers"])))
    run("index", path, "--index", tmp_path / "idx")
    [only] = [json.loads(line) for line in run(
        "search", "Protein structure prediction", "--year", "2021", "--index", tmp_path / "idx",
        "--json").output.splitlines()]
    assert only["id"] == "p1" and only["score"] > 0.7


def test_explanations_sit_under_their_result_without_stopwords(sample_index):
    output = run("search", "a graph for the retrieval of knowledge", "-k", "2", "--explain",
                 "--index", sample_index).output
    lines = output.splitlines()
    second = next(i for i, line in enumerate(lines) if line.strip().startswith("2 "))
    assert any("words matched:" in line for line in lines[:second])   # under result 1
    matched = [line for line in lines if "words matched:" in line]
    assert len(matched) == 2
    assert not {"a", "for", "the", "of"} & set(matched[0].split(":")[1].replace(",", " ").split())


def test_like_explains_too(sample_index):
    rows = [json.loads(line) for line in run("like", "LightRAG", "--explain", "-k", "2",
                                             "--index", sample_index, "--json")
            .output.splitlines()]
    assert all(row["explain"]["sentence"] for row in rows)


# -- info -----------------------------------------------------------------------------------

def test_info_is_written_for_people(tmp_path):
    run("index", DATA / "scifact-first-60.jsonl", "--index", tmp_path / "q", "--quantized")
    text = run("info", "--index", tmp_path / "q").output
    assert "None" not in text and "{" not in text and "int8" in text
    assert json.loads(run("info", "--index", tmp_path / "q", "--json").output)["quantized"]


def test_info_on_an_index_without_its_document_table_fails_like_search(tmp_path):
    run("index", DATA / "scifact-first-60.jsonl", "--index", tmp_path / "i")
    live = tmp_path / "i" / (tmp_path / "i" / "CURRENT").read_text().strip()
    (live / "documents.sqlite").unlink()
    info = run("info", "--index", tmp_path / "i", ok=False)
    search = run("search", "x", "--index", tmp_path / "i", ok=False)
    assert info.exit_code == search.exit_code == 1 and info.output == search.output


# -- papers without abstracts, and real exports ----------------------------------------------

def test_papers_without_an_abstract_are_indexed_by_title_and_counted(tmp_path):
    path = write(tmp_path / "scholar.bib", "".join(
        f"@article{{k{i}, title={{Protein folding with deep networks, part {i}}}, "
        f"author={{Jumper, John}}, year={{2021}}}}\n" for i in range(3)))
    result = run("index", path, "--index", tmp_path / "bib")
    assert "3 papers without an abstract, searched by title" in result.output
    hits = run("search", "protein structure prediction", "--index", tmp_path / "bib", "--json")
    assert len(hits.output.splitlines()) == 3


def test_a_zotero_export_is_searchable_by_tag_with_no_flags(tmp_path):
    from test_readers import zotero_csv

    path = zotero_csv(tmp_path / "My Library.csv")
    run("index", path, "--index", tmp_path / "z")
    rows = run("search", "transformers", "--tag", "must read", "--index", tmp_path / "z",
               "--json").output.splitlines()
    assert [json.loads(row)["id"] for row in rows] == ["10.5555/3295222.3295349"]
    by_author = run("search", "language models", "--author", "Jacob Devlin", "--index",
                    tmp_path / "z", "--json").output.splitlines()
    assert [json.loads(row)["id"] for row in by_author] == ["EFGH5678"]


def test_progress_off_a_terminal_is_a_line_per_stage_with_rate_and_time_left(tmp_path,
                                                                             monkeypatch):
    from semsearch import cli

    monkeypatch.setattr(cli._ProgressBars, "LOG_EVERY", 0.0)
    result = run("index", "--sample", "--index", tmp_path / "logged")
    lines = result.stderr.splitlines()
    assert any(line.startswith("reading: ") and "doc/s" in line for line in lines)
    embedding = [line for line in lines if line.startswith("embedding: ")]
    assert embedding and embedding[-1].startswith("embedding: 148/148 (100%), ")
    assert all("doc/s" in line and line.endswith(" left") for line in embedding)
    assert any(line.startswith("checksums: ") and "B/s" in line for line in lines)


def test_the_command_ends_with_its_whole_output_and_exit_status(sample_index):
    """`semsearch` skips the interpreter's teardown: nothing it printed may be lost."""
    import subprocess
    import sys

    command = [sys.executable, "-c", "from semsearch.cli import run; run()"]
    done = subprocess.run(command + ["search", "retrieval", "--index", str(sample_index),
                                     "--json", "-k", "148"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["rank"] for line in done.stdout.splitlines()] == \
        list(range(1, 149))
    failed = subprocess.run(command + ["search", "", "--index", str(sample_index)],
                            capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stderr.strip() == "Error: the query is empty"
    usage = subprocess.run(command + ["search"], capture_output=True, text=True)
    assert usage.returncode == 2 and "give a QUERY" in usage.stderr


@pytest.mark.parametrize("args, says", [
    (["--host", "0.0.0.0"], "give --token"),
    (["--host", "192.168.1.20"], "give --token"),
    (["--token", "short"], "16 or more"),
    (["--token", "has spaces in it, sixteen+"], "16 or more"),
])
def test_serve_refuses_an_open_address_or_a_bad_token_before_starting(args, says):
    result = run("serve", "--index", "nothing-here", *args, ok=False)
    assert result.exit_code == 2 and says in result.output


def test_serve_sample_indexes_serves_and_stops_on_sigterm(tmp_path):
    """The README's second way in: `semsearch serve --sample`, then the page and the API."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--sample",
                               "--index", str(tmp_path / "sample"), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        address = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                page = urllib.request.urlopen(address + "/", timeout=5).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        assert "<title>semsearch</title>" in page
        answer = json.load(urllib.request.urlopen(
            address + "/api/search?q=knowledge+graph+retrieval&k=3", timeout=30))
        assert len(answer["results"]) == 3
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert server.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal
    assert "Indexed 148 papers" in output and f"at {address}/" in output


def test_passages_read_as_neither_paper_nor_chrome_are_counted_and_listed(tmp_path):
    page = DATA / "pages" / "daily-feed-with-comments.txt"
    said = run("index", page, "--dry-run", "--index", tmp_path / "x").output
    assert "3 papers would be indexed" in said
    assert "1 passage of a page read as neither a paper nor page chrome (--verbose lists " \
        "them)" in said
    listed = run("index", page, "--dry-run", "--verbose", "--index", tmp_path / "x").output
    assert "daily-feed-with-comments.txt:37: read as neither a paper nor page chrome: " \
        "'See all papers from this week'" in listed
    record = json.loads(run("index", page, "--dry-run", "--json", "-v").output)
    assert record["unread_passages"] == 1 and record["unread"][0]["line"] == 37


def test_a_paper_is_named_by_its_citation_key_or_zotero_key_when_its_doi_is_the_id(tmp_path):
    from test_readers import zotero_csv

    bib = write(tmp_path / "refs.bib", "@inproceedings{velickovic2018gat,\n"
                "  title = {Graph Attention Networks},\n  doi = {10.48550/arXiv.1710.10903},\n"
                "  eprint = {1710.10903}, archivePrefix = {arXiv},\n"
                "  abstract = {We present graph attention networks, operating on graphs.}}\n")
    run("index", bib, zotero_csv(tmp_path / "zotero.csv"), "--index", tmp_path / "i")
    shown = json.loads(run("show", "velickovic2018gat", "--index", tmp_path / "i",
                           "--json").output)
    assert shown["id"] == "10.48550/arXiv.1710.10903"
    assert shown["link"] == "https://arxiv.org/abs/1710.10903"  # the eprint, free to read
    assert "also:       velickovic2018gat" in run("show", "VELICKOVIC2018GAT", "--index",
                                                  tmp_path / "i").output
    zotero = json.loads(run("show", "ABCD1234", "--index", tmp_path / "i", "--json").output)
    assert zotero["id"] == "10.5555/3295222.3295349"
    assert "Vaswani, Ashish" not in run("show", "ABCD1234", "--index", tmp_path / "i").output
    liked = run("like", "velickovic2018gat", "--index", tmp_path / "i", "--json").output
    assert "Attention" in liked


def test_serve_never_prints_its_token(sample_index, monkeypatch):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(options))
    token = "s3cret-token-of-twenty-chars"
    said = run("serve", "--index", sample_index, "--token", token).output
    assert served and token not in said and "?token=YOUR-TOKEN" in said


def test_a_file_read_as_a_page_that_holds_no_paper_says_how_it_was_read(tmp_path):
    path = write(tmp_path / "export.xml", '<?xml version="1.0"?>\n<records><record>'
                                          '<title>A</title></record></records>\n')
    result = run("index", path, "--index", tmp_path / "x", ok=False)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "export.xml was read as the text of a page of papers (a feed)" in result.output
    assert "--format" in result.output
