"""The BibTeX reader on the quirks of real exports: braces, LaTeX accents, macros, gaps."""

import pytest

from semsearch.errors import InputError
from semsearch.readers import ReadOptions, detect_format, read_documents

from conftest import write

LIBRARY = r"""
% exported by a reference manager
@string{acl = "Proceedings of ACL"}

@article{mueller2021,
  title = {{BERT} for {Caf\'e} Reviews: An {\"U}ber-Study},
  author = {M{\"u}ller, J{\"o}rg and Smith, John and {The LIGO Collaboration}},
  year = 2021,
  abstract = {We fine-tune {BERT} on
              caf{\'e} reviews.   Accuracy improves.},
  keywords = {sentiment analysis; transfer learning},
  doi = {10.1000/XYZ.123},
  booktitle = acl
}

@inproceedings{no_abstract_2019,
  title = "A Paper Without an Abstract",
  author = "Doe, Jane",
  year = "2019"
}

@misc{keyed2020,
  title = {Keyed by Citation Key},
  author = {Ng, A.},
  date = {2020-05-01},
  abstract = {Short.}
}
"""


def test_entries_become_documents_with_accents_decoded_and_braces_gone(tmp_path):
    path = write(tmp_path / "refs.bib", LIBRARY)
    options = ReadOptions(skip_bad=True)
    first, untitled, second = read_documents([path], options=options)
    assert first.id == "10.1000/XYZ.123"                       # the DOI when there is one
    assert first.title == "BERT for Café Reviews: An Über-Study"
    assert first.abstract == "We fine-tune BERT on café reviews. Accuracy improves."
    assert first.metadata["authors"] == ["Jörg Müller", "John Smith", "The LIGO Collaboration"]
    assert first.metadata["year"] == 2021
    assert first.metadata["tags"] == ["sentiment analysis", "transfer learning"]
    assert (untitled.id, untitled.abstract) == ("no_abstract_2019", "")   # searched by title
    assert second.id == "keyed2020" and second.metadata["year"] == 2020   # else the key
    assert options.skipped == []


def test_an_entry_with_no_title_and_no_abstract_stops_the_read_naming_the_line(tmp_path):
    path = write(tmp_path / "refs.bib", LIBRARY + '\n@misc{empty2018, author = "Doe, Jane"}\n')
    with pytest.raises(InputError, match=r"refs.bib:29: entry empty2018: no title and no abstract"):
        list(read_documents([path]))


def test_a_broken_entry_is_named_and_the_rest_still_read_with_skip_bad(tmp_path):
    path = write(tmp_path / "broken.bib",
                 "@article{good, title={Fine}, abstract={Text here.}}\n\n"
                 "@article{bad, title={Never closed, abstract={x}\n")
    options = ReadOptions(skip_bad=True)
    assert [doc.id for doc in read_documents([path], options=options)] == ["good"]
    assert "broken.bib:3: cannot parse this @article entry" in str(options.skipped[0])


def test_bib_files_are_detected(tmp_path):
    assert detect_format(write(tmp_path / "refs.bib", LIBRARY)) == "bibtex"
    assert detect_format(write(tmp_path / "export.txt", "@article{a, title={T}}\n")) == "bibtex"


def test_an_entry_over_the_bound_is_a_bad_record_and_a_long_field_is_cut(tmp_path):
    from semsearch.documents import MAX_ABSTRACT_CHARS
    from semsearch.readers.bibtex import MAX_ENTRY_CHARS

    long_field = r"caf{\'e} " * 60_000          # 540 KB: parsed, then cut before decoding
    huge = "word " * (MAX_ENTRY_CHARS // 4)      # over the bound: not parsed at all
    path = write(tmp_path / "big.bib", f"@article{{long, title={{Long}}, abstract={{{long_field}}}}}\n"
                                       f"@article{{huge, title={{Huge}}, abstract={{{huge}}}}}\n"
                                       "@article{fine, title={Fine}, abstract={Short.}}\n")
    options = ReadOptions(skip_bad=True)
    docs = {doc.id: doc for doc in read_documents([path], options=options)}
    assert set(docs) == {"long", "fine"}
    assert len(docs["long"].abstract) == MAX_ABSTRACT_CHARS and "café" in docs["long"].abstract
    [problem] = options.skipped
    assert problem.line == 2 and "at most" in problem.reason
