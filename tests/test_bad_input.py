"""Every kind of bad input the reliability issue lists, through the command line.

Each one must fail with a one-line error naming the file (and line, where there is one),
exit non-zero, and leave the index on disk exactly as it was; the ones that are not errors
(a 1 MB abstract, an id repeated in one file, --skip-bad) must do what they promise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Engine
from semsearch.cli import main

from conftest import DATA, index_contents, write


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])




@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "built"
    assert run("index", DATA / "scifact-first-60.jsonl", "--index", path).exit_code == 0
    return path


@pytest.fixture
def index(built, tmp_path) -> Path:
    """A fresh copy of the built index for each test, so changes cannot leak between tests."""
    return Path(shutil.copytree(built, tmp_path / "index"))


GOOD = '{"id": "ok1", "title": "A fine paper", "abstract": "With a fine abstract."}\n'
BAD_FILES = {
    "malformed.jsonl": (GOOD + '{"id": "x", "title": oops\n', "malformed.jsonl:2: not valid JSON"),
    "bytes.jsonl": (GOOD.encode() + b'{"id": "x", "title": "T", "abstract": "caf\xe9"}\n',
                    "bytes.jsonl:2: bytes that are not UTF-8"),
    "no-text.jsonl": (GOOD + '{"id": "x", "summary": ""}\n',
                      "no-text.jsonl:2: no title and no abstract"),
    "empty-text.jsonl": (GOOD + '{"id": "x", "title": " ", "abstract": "  "}\n',
                         "empty-text.jsonl:2: no title and no abstract"),
    "columns.csv": ("id,heading,body_text\n1,A paper,Text\n",
                    "columns.csv:1: no title or abstract column in the header"),
    "empty.jsonl": ("", "the input holds no documents"),
}


@pytest.mark.parametrize("command", ["index", "add"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_fails_naming_file_and_line_and_changes_nothing(index, tmp_path, name, command):
    content, message = BAD_FILES[name]
    path = write(tmp_path / name, content)
    before = index_contents(index)
    result = run(command, path, "--index", index)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1     # one line, no traceback
    assert index_contents(index) == before


def test_bad_file_into_a_new_index_creates_nothing(tmp_path, index_root):
    path = write(tmp_path / "malformed.jsonl", BAD_FILES["malformed.jsonl"][0])
    assert run("index", path, "--index", "fresh").exit_code == 1
    empty = write(tmp_path / "empty.jsonl", "")
    assert "the input holds no documents" in run("index", empty, "--index", "fresh").output
    assert not (index_root / "fresh").exists()


def test_skip_bad_continues_and_reports_count_and_first_lines(index, tmp_path):
    bad_lines = "".join('{"id": "b%d", oops\n' % i for i in range(7))
    path = write(tmp_path / "some-bad.jsonl", GOOD + bad_lines)
    result = run("add", path, "--index", index, "--skip-bad")
    assert result.exit_code == 0
    assert "1 added" in result.stdout and "bad records skipped 7" in result.stdout
    assert "some-bad.jsonl:2: not valid JSON" in result.stderr
    assert "some-bad.jsonl:6:" in result.stderr and "... and 2 more" in result.stderr
    assert Engine.open(index).info().count == 61


def test_a_1mb_abstract_is_cut_to_its_bound_said_once_and_still_searchable(index, tmp_path):
    from semsearch.documents import MAX_ABSTRACT_CHARS

    abstract = "Tardigrades survive extreme desiccation. " + "filler words " * 80_000
    assert len(abstract) > 1_000_000
    path = write(tmp_path / "big.jsonl", json.dumps(
        {"id": "big", "title": "Tardigrade desiccation tolerance", "abstract": abstract}) + "\n")
    result = run("add", path, "--index", index)
    assert result.exit_code == 0, result.output
    assert result.output.count("cut to") == 1 and "1 paper's text was cut" in result.output
    with Engine.open(index) as engine:
        assert engine.get("big").abstract == abstract[:MAX_ABSTRACT_CHARS]
        hits = engine.search("how do tardigrades survive drying out", k=3, mode="dense")
        assert "big" in [hit.id for hit in hits]


@pytest.mark.parametrize("command", ["index", "add"])
def test_an_id_repeated_in_one_file_keeps_the_last_with_a_warning(index, tmp_path, command):
    path = write(tmp_path / "twice.jsonl",
                 '{"id": "dup", "title": "First version", "abstract": "Old text."}\n'
                 '{"id": "dup", "title": "Second version", "abstract": "New text."}\n')
    result = run(command, path, "--index", index)
    assert result.exit_code == 0, result.output
    assert "warning: 1 id(s) appear more than once" in result.stderr and "dup" in result.stderr
    with Engine.open(index) as engine:
        assert engine.get("dup").title == "Second version"


@pytest.mark.parametrize("command", [["search", "a query"], ["like", "x"], ["info"], ["verify"],
                                     ["add", DATA / "scifact-first-60.jsonl"], ["remove", "x"]])
def test_a_missing_index_is_named_and_not_created(tmp_path, command):
    missing = tmp_path / "nowhere"
    result = run(*command, "--index", missing)
    assert result.exit_code == 1 and f"no index at {missing}" in result.output
    assert not missing.exists()


def test_a_folder_that_is_not_an_index_is_named_and_left_alone(tmp_path):
    folder = tmp_path / "papers"
    write(folder / "notes.txt", "mine")
    for command in (["search", "a query"], ["add", DATA / "scifact-first-60.jsonl"]):
        result = run(*command, "--index", folder)
        assert result.exit_code == 1 and f"{folder} is not a semsearch index" in result.output
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_another_model_is_refused_for_queries_and_additions(index, tmp_path):
    before = index_contents(index)
    result = run("search", "a query", "--index", index, "--model", tmp_path / "other-model")
    assert result.exit_code == 1
    assert "was built with the model 'all-MiniLM-L6-v2'" in result.output
    assert index_contents(index) == before


def test_an_index_of_another_dimension_is_refused(index):
    import numpy as np

    from semsearch.errors import StoreError

    before = index_contents(index)
    with Engine.open(index) as engine, pytest.raises(StoreError, match="dimension 384"):
        engine.search_vector(np.ones(64, dtype=np.float32))
    assert index_contents(index) == before


@pytest.mark.parametrize("k, message", [("0", "0 is not in the range x>=1"),
                                        ("-3", "-3 is not in the range x>=1"),
                                        ("100000000", "k must be a whole number from 1 to 10000")])
def test_k_out_of_range_is_refused(index, k, message):
    before = index_contents(index)
    result = run("search", "a query", "-k", k, "--index", index)
    assert result.exit_code != 0 and message in result.output
    assert index_contents(index) == before


def test_an_empty_query_is_refused(index):
    before = index_contents(index)
    result = run("search", "   ", "--index", index)
    assert result.exit_code == 1 and "the query is empty" in result.output
    assert index_contents(index) == before


def test_remove_of_an_unknown_id_is_refused_and_changes_nothing(index):
    before = index_contents(index)
    result = run("remove", "no-such-paper", "--index", index)
    assert result.exit_code == 1 and "no paper with id 'no-such-paper'" in result.output
    assert index_contents(index) == before


# -- bounds on what one record or one query may cost ------------------------------------------

def test_a_jsonl_line_over_the_bound_is_a_bad_record_read_past_in_blocks(index, tmp_path):
    from semsearch.readers.text import MAX_LINE_BYTES

    huge = json.dumps({"id": "huge", "title": "Huge", "abstract": "x" * MAX_LINE_BYTES})
    path = write(tmp_path / "huge.jsonl", '{"id": "a", "title": "Fine", "abstract": "Short."}\n'
                 + huge + "\n" + '{"id": "b", "title": "After", "abstract": "Also fine."}\n')
    before = index_contents(index)
    result = run("add", path, "--index", index)
    assert result.exit_code == 1 and "huge.jsonl:2: a line of over 16 MB" in result.output
    assert index_contents(index) == before
    result = run("add", path, "--index", index, "--skip-bad")
    assert result.exit_code == 0 and "bad records skipped 1" in result.output
    assert {"a", "b"} <= set(Engine.open(index).ids())


def test_search_reads_no_more_of_a_query_file_than_a_query_holds(index, tmp_path):
    from semsearch.engine import MAX_QUERY_CHARS

    query = write(tmp_path / "query.txt", "Tardigrades survive desiccation. " * 100_000)
    result = run("search", "--file", query, "--index", index, "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    assert f"the query was cut to its first {MAX_QUERY_CHARS:,} characters" in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("{")]) == 3


# -- inputs that once reached the index as something else -----------------------------------

SURROGATE = r'"Caf\udce9"'


@pytest.mark.parametrize("name, line", [
    ("p.jsonl", '{"id": "s", "title": ' + SURROGATE + ', "abstract": "Text."}'),
    ("corpus.jsonl", '{"_id": "s", "title": ' + SURROGATE + ', "text": "Text."}'),
    ("arxiv.jsonl", '{"id": "2401.00001", "title": ' + SURROGATE + ', "abstract": "Text.", '
                    '"versions": [], "update_date": "2024-01-01"}'),
])
@pytest.mark.parametrize("dry_run", [False, True])
def test_an_escaped_lone_surrogate_is_a_bad_record_with_its_line(index, tmp_path, name, line,
                                                                 dry_run):
    path = write(tmp_path / name, line + "\n")
    before = index_contents(index)
    result = run("index", path, "--index", index, *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1, result.output
    assert f"{name}:1: an escaped lone surrogate (\\udce9)" in result.output
    assert "Traceback" not in result.output and index_contents(index) == before


@pytest.mark.parametrize("record, says", [
    ({"id": ["a", "b"], "title": "T", "abstract": "A"}, "the id ('id') is a list, not text"),
    ({"id": {"x": 1}, "title": "T", "abstract": "A"}, "the id ('id') is an object, not text"),
    ({"id": True, "title": "T", "abstract": "A"}, "the id ('id') is true or false, not text"),
    ({"id": "t", "title": 3.5, "abstract": "A"}, "the title ('title') is a number, not text"),
    ({"id": "t", "title": ["T"], "abstract": "A"}, "the title ('title') is a list, not text"),
    ({"id": "t", "title": "T", "abstract": {"en": "A"}}, "the abstract ('abstract') is an object"),
])
def test_a_field_that_is_not_text_is_a_bad_record_not_its_python_form(index, tmp_path, record,
                                                                       says):
    path = write(tmp_path / "p.jsonl", json.dumps(record) + "\n")
    result = run("add", path, "--index", index)
    assert result.exit_code == 1 and f"p.jsonl:1: {says}" in result.output


def test_a_number_is_an_id(index, tmp_path):
    path = write(tmp_path / "p.jsonl", json.dumps({"id": 12345, "title": "T", "abstract": "A."})
                 + "\n")
    assert run("add", path, "--index", index).exit_code == 0
    assert Engine.open(index).get("12345").id == "12345"


def test_nul_bytes_never_reach_an_id_or_a_title(index, tmp_path):
    path = write(tmp_path / "p.jsonl", json.dumps(
        {"id": "nul\u0000id", "title": "A\u0000title", "abstract": "Text\u0000here."}) + "\n")
    assert run("add", path, "--index", index).exit_code == 0
    paper = Engine.open(index).get("nul id")
    assert (paper.id, paper.title, paper.abstract) == ("nul id", "A title", "Text here.")


@pytest.mark.parametrize("name, says", [
    ("a" * 300, "a folder name of 300 bytes"),
    ("~nouser-semsearch/x", "no home folder for '~nouser-semsearch'")])
@pytest.mark.parametrize("command", [["info"], ["verify"], ["search", "x"], ["remove", "x"],
                                     ["reindex"], ["recover"]])
def test_an_index_name_the_file_system_cannot_take_is_one_line(name, says, command):
    result = run(*command, "--index", name)
    assert result.exit_code == 1 and says in result.output
    assert result.output.count("\n") == 1, result.output


@pytest.mark.parametrize("change", ["no segments", "wrong count", "stray tombstone"])
def test_a_hand_edited_commit_record_fails_verify_and_queries_in_one_line(index, change):
    import sqlite3

    generation = index / (index / "CURRENT").read_text().strip()
    database = sqlite3.connect(generation / "documents.sqlite")
    number, text = database.execute(
        "SELECT number, record FROM commits ORDER BY number DESC LIMIT 1").fetchone()
    record = json.loads(text)
    if change == "no segments":
        record["segments"] = []
    elif change == "wrong count":
        record["count"] += 5
    else:
        database.execute("INSERT INTO tombstones (row) VALUES (999999)")
    database.execute("UPDATE commits SET record = ? WHERE number = ?", (json.dumps(record),
                                                                      number))
    database.commit()
    database.close()
    verified = run("verify", "--index", index)
    assert verified.exit_code == 1 and "the commit record does not match" in verified.output
    for command in (["search", "tardigrades"], ["like", "tardigrades"], ["info"]):
        result = run(*command, "--index", index)
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert "commit record does not match" in result.output
