"""The index folder: generations, commits inside one, snapshots, checksums, the document
table (semsearch.store)."""

import json
import sqlite3

import pytest

from semsearch import _fs, store
from semsearch.documents import Document
from semsearch.errors import StoreError
from semsearch.store.folder import KEEP_COMMITS
from semsearch.store.records import Commit, Manifest, SegmentInfo


def segment_in(folder, name, payload=b"vectors", row=1):
    """A segment of one row and a data file (no vectors: the store does not read them)."""
    import numpy as np

    path = folder / name
    path.mkdir()
    (path / "data.bin").write_bytes(payload)
    np.save(path / "rows.npy", np.array([row], dtype=np.int64))
    return SegmentInfo(name=name, count=1, first_row=row, last_row=row, tokens=1,
                       files={name: _fs.file_checksum(path / name)
                              for name in ("data.bin", "rows.npy")})


def build(folder, docs):
    with folder.new_generation() as generation:
        for doc in docs:
            generation.documents.stage(doc)
        info = segment_in(generation.segments_path, "seg-000001")
        commit = Commit(number=1, segments=(info,), ann=None, index_type="exact",
                        target_recall=0.95, lexical={}, count=len(docs),
                        next_row=len(docs) + 1, next_name=2)
        generation.commit(Manifest(model="m", dimension=4), commit)


def write(folder, doc, payload=b"more"):
    """One write inside the live generation: a paper and a segment."""
    with folder.writing() as writer:
        writer.documents.upsert(doc, writer.base.next_row)
        info = segment_in(writer.segments_path, writer.new_name("seg"), payload,
                          row=writer.base.next_row)
        return writer.commit(Commit(**{**writer.base.__dict__,
                                       "segments": writer.base.segments + (info,),
                                       "count": writer.base.count + 1,
                                       "next_row": writer.base.next_row + 1}))


def test_resolve_names_and_paths(index_root):
    assert store.resolve(None) == index_root / "default"
    assert store.resolve("scifact") == index_root / "scifact"
    assert str(store.resolve("./here")) == "here"
    assert str(store.resolve("/abs/idx")) == "/abs/idx"


def test_a_build_is_read_back_whole(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    doc = Document("a", "Title", "Abstract", {"year": 2020, "authors": ["X Y"]})
    build(folder, [doc])
    snapshot = store.Snapshot.pin(folder)
    table = snapshot.documents
    row = table.row_of_id("a")
    assert table.by_rows([row]) == {row: doc}
    assert table.rows_of_title("  TITLE ") == [row]
    assert snapshot.manifest.model == "m" and snapshot.commit.number == 1
    assert snapshot.locate("segments/seg-000001/data.bin").read_bytes() == b"vectors"


def test_duplicate_rules(tmp_path):
    table = store.DocumentTable.create(tmp_path / "d.sqlite")
    assert table.stage(Document("a", "T", "A"))[0] == "new"
    assert table.stage(Document("a", "T", "A"))[0] == "duplicate"
    assert table.stage(Document("b", "t", "A."))[0] == "duplicate"   # same text, other id
    assert table.stage(Document("a", "T", "A revised"))[0] == "replaced"
    assert len(table) == 1
    [(row, doc)] = next(table.batches(10))
    assert doc.abstract == "A revised"


def test_batches_cover_every_row_in_order(tmp_path):
    table = store.DocumentTable.create(tmp_path / "d.sqlite")
    for i in range(25):
        table.stage(Document(str(i), f"T{i}", f"A{i}"))
    rows = [row for batch in table.batches(7) for row, _ in batch]
    assert rows == sorted(rows) and len(rows) == 25


def test_upsert_embeds_only_what_changed(tmp_path):
    table = store.DocumentTable.create(tmp_path / "d.sqlite")
    table.stage(Document("a", "T", "A", {"year": 2020}))
    assert table.upsert(Document("a", "T", "A", {"year": 2021}), 10) == ("unchanged", None)
    assert table.by_rows([1])[1].metadata == {"year": 2021}   # metadata refreshed in place
    assert table.upsert(Document("b", "t", "A."), 11) == ("duplicate", None)
    assert table.upsert(Document("a", "T", "A revised"), 12) == ("updated", 1)
    assert table.upsert(Document("c", "New", "Paper"), 13) == ("new", None)
    assert table.row_of_id("a") == 12
    assert table.delete("c") == 13 and table.delete("c") is None
    assert len(table) == 1


def test_a_write_commits_inside_the_generation_and_old_readers_keep_their_state(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    before = store.Snapshot.pin(folder)
    committed = write(folder, Document("b", "T2", "A2"))
    assert committed.number == 2 and [s.name for s in committed.segments] == \
        ["seg-000001", "seg-000002"]
    after = store.Snapshot.pin(folder)
    assert after.documents.row_of_id("b") is not None and after.commit.number == 2
    assert before.documents.row_of_id("b") is None and before.commit.number == 1  # isolated
    assert len(list((tmp_path / "idx").glob("gen-*"))) == 1


def test_a_failed_write_changes_nothing_and_leaves_no_files(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    with pytest.raises(RuntimeError):
        with folder.writing() as writer:
            writer.documents.upsert(Document("b", "T2", "A2"), writer.base.next_row)
            segment_in(writer.segments_path, writer.new_name("seg"))
            raise RuntimeError("crash in the middle")
    snapshot = store.Snapshot.pin(folder)
    assert snapshot.documents.row_of_id("b") is None and snapshot.commit.number == 1
    assert [p.name for p in (folder.generation() / "segments").iterdir()] == ["seg-000001"]


def test_segments_no_recent_commit_names_are_removed(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    reader = store.Snapshot.pin(folder)
    for number in range(4):
        with folder.writing() as writer:
            name = writer.new_name("seg")
            info = segment_in(writer.segments_path, name)
            # a merge: the new segment replaces every other
            writer.commit(Commit(**{**writer.base.__dict__, "segments": (info,)}))
    kept = sorted(p.name for p in (folder.generation() / "segments").iterdir())
    assert len(kept) == KEEP_COMMITS and "seg-000001" not in kept
    # a reader of the first state still reads its files, held open
    assert reader.locate("segments/seg-000001/data.bin").read_bytes() == b"vectors"


def test_a_failed_first_build_leaves_no_index(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    with pytest.raises(RuntimeError):
        with folder.new_generation():
            raise RuntimeError("empty corpus")
    assert not (tmp_path / "idx").exists()


def test_a_new_build_replaces_and_keeps_one_old_generation(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    first = folder.generation()
    pinned = store.Snapshot.pin(folder)
    build(folder, [Document("b", "T2", "A2")])
    build(folder, [Document("c", "T3", "A3")])
    assert store.Snapshot.pin(folder).documents.row_of_id("c") is not None
    assert not first.exists()
    assert len(list((tmp_path / "idx").glob("gen-*"))) == 2
    assert pinned.documents.row_of_id("a") is not None  # opened before; still readable


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(StoreError, match="no index at .*semsearch index"):
        store.IndexFolder(tmp_path / "nothing").manifest()


def test_folder_that_is_not_an_index(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(StoreError, match="not a semsearch index"):
        store.IndexFolder(tmp_path / "stuff").manifest()


def test_an_index_of_format_1_says_how_to_upgrade(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    path = folder.generation() / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 1}))
    with pytest.raises(StoreError, match="format 1.*semsearch upgrade --index"):
        store.Snapshot.pin(folder)


def test_newer_format_is_refused(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    path = folder.generation() / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    with pytest.raises(StoreError, match="newer than this semsearch"):
        folder.manifest()


def test_second_writer_is_refused_while_one_writes(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    with folder.writing():
        with pytest.raises(StoreError, match="being written by another process"):
            with store.IndexFolder(tmp_path / "idx").writing():
                pass


def test_a_file_that_is_no_document_table_is_named_on_open(tmp_path):
    path = tmp_path / "documents.sqlite"
    path.write_bytes(b"not a database ".ljust(8192, b"x"))
    with pytest.raises(StoreError, match="documents.sqlite: cannot read the document table"):
        store.DocumentTable.open_for_read(path)


def test_an_open_table_reads_through_a_memory_map(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    snapshot = store.Snapshot.pin(folder)
    (mapped,) = snapshot.documents._db.execute("PRAGMA mmap_size").fetchone()
    assert mapped >= (folder.generation() / "documents.sqlite").stat().st_size


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_opening_a_damaged_segment_file_names_it_and_verify_finds_it(tmp_path, damage):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "Title", "Abstract")])
    path = folder.generation() / "segments" / "seg-000001" / "data.bin"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[3] ^= 0x01
    else:
        data = data[:-2]
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=f"{path}: .*damaged"):
        store.Snapshot.pin(folder)
    assert any(str(path) in problem for problem in folder.verify())


def test_verify_finds_a_paper_edited_behind_semsearchs_back(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "Title", "Abstract")])
    assert folder.verify() == []
    database = sqlite3.connect(folder.generation() / "documents.sqlite")
    database.execute("UPDATE documents SET title = 'Tilte' WHERE id = 'a'")
    database.commit()
    database.close()
    assert any("paper 'a'" in problem for problem in folder.verify())


def test_an_intact_file_is_hashed_once_then_trusted_by_its_stamp(tmp_path, monkeypatch):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "Title", "Abstract")])
    live = folder.generation()
    (live / ".checked.json").unlink()          # as if no open had checked the files yet
    hashed = []
    real = _fs.file_checksum
    monkeypatch.setattr(_fs, "file_checksum", lambda path: hashed.append(path) or real(path))
    store.Snapshot.pin(folder).close()
    assert len(hashed) == 2                    # the segment's two files
    hashed.clear()
    store.Snapshot.pin(folder).close()
    assert hashed == []


def test_a_located_file_still_reads_when_it_is_deleted_before_it_is_opened(tmp_path):
    """A reader locates a file of its state, then opens it; a writer's cleanup may remove the
    file in between. What `locate` gives must read the pinned file all the same."""
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    snapshot = store.Snapshot.pin(folder)
    name = next(name for name in snapshot.commit.files() if name.startswith("segments/"))
    before = (snapshot.path / name).read_bytes()
    located = snapshot.locate(name)
    (snapshot.path / name).unlink()  # the cleanup, between locating and opening
    assert located.read_bytes() == before


def edit_record(folder, change) -> None:
    """Rewrite the latest commit record as someone editing the database by hand would."""
    database = sqlite3.connect(folder.generation() / "documents.sqlite")
    number, text = database.execute(
        "SELECT number, record FROM commits ORDER BY number DESC LIMIT 1").fetchone()
    record = json.loads(text)
    change(record, database)
    database.execute("UPDATE commits SET record = ? WHERE number = ?",
                     (json.dumps(record), number))
    database.commit()
    database.close()


@pytest.mark.parametrize("edit, says", [
    (lambda record, db: record.update(segments=[]), "names no segments"),
    (lambda record, db: record.update(count=record["count"] + 3), "it says 4 papers"),
    (lambda record, db: db.execute("INSERT INTO tombstones (row) VALUES (77)"),
     "row 77 is marked deleted, but no segment holds it"),
    (lambda record, db: db.execute("DELETE FROM documents WHERE id = 'a'"),
     "the document table holds 0"),
])
def test_verify_checks_the_commit_record_against_the_files_and_papers(tmp_path, edit, says):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "Title", "Abstract")])
    edit_record(folder, edit)
    problems = folder.verify()
    assert any(says in problem for problem in problems), problems


@pytest.mark.parametrize("edit", [lambda record, db: record.update(segments=[]),
                                  lambda record, db: record.update(count=9)])
def test_opening_a_state_whose_record_contradicts_itself_fails_in_one_line(tmp_path, edit):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "Title", "Abstract")])
    edit_record(folder, edit)
    with pytest.raises(StoreError, match="the commit record does not match the index"):
        store.Snapshot.pin(folder)
