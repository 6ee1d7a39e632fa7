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
    assert lines[0].split() == ["rank", "score", "id", "title"]
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
    result = run("like", "MM Embed universal multimodal retrieval", "--index", sample_index, ok=False)
    assert result.exit_code == 1
    assert "closest titles: 'MM-Embed: Universal Multimodal Retrieval with Multimodal LLMs'" \
        in result.output


def test_info_describes_the_index(sample_index):
    details = json.loads(run("info", "--index", sample_index, "--json").output)
    assert details["count"] == 148 and details["model"] == "all-MiniLM-L6-v2"
    assert details["dimension"] == 384 and details["index_type"] == "exact"
    assert "count" in run("info", "--index", sample_index).output


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
    target = live / "lexical" / "vocab.index.json"
    target.write_text(target.read_text().replace("a", "b", 1))
    result = run("verify", "--index", path, "--json", ok=False)
    assert result.exit_code == 1
    report = json.loads(result.output.splitlines()[0])
    assert report["ok"] is False and "vocab.index.json" in report["problems"][0]


def test_dry_run_reports_without_writing_an_index(index_root):
    result = run("index", "--sample", "--dry-run", "--json")
    report = json.loads(result.output.splitlines()[-1])
    assert (report["read"], report["duplicates"], report["indexed"]) == (165, 17, 148)
    assert report["dry_run"] is True and report["index"] is None
    assert not index_root.exists() or not any(index_root.iterdir())


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
