import json
import sqlite3

import pytest

from semsearch import store
from semsearch.documents import Document
from semsearch.errors import StoreError


def manifest(count=1):
    return store.Manifest(model="m", dimension=4, count=count, index_type="exact")


def build(folder, docs):
    with folder.new_generation() as generation:
        for doc in docs:
            generation.documents.stage(doc)
        (generation.vectors_path / "index.faiss").write_bytes(b"vectors")
        return generation.commit(manifest(len(docs)))


def test_resolve_names_and_paths(index_root):
    assert store.resolve(None) == index_root / "default"
    assert store.resolve("scifact") == index_root / "scifact"
    assert str(store.resolve("./here")) == "here"
    assert str(store.resolve("/abs/idx")) == "/abs/idx"


def test_round_trip_of_documents_and_manifest(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    doc = Document("a", "Title", "Abstract", {"year": 2020, "authors": ["X Y"]})
    written = build(folder, [doc])
    assert folder.manifest() == written
    assert written.files["documents.sqlite"]["sha256"]
    snapshot = store.Snapshot.pin(folder)
    table = snapshot.documents
    row = table.row_of_id("a")
    assert table.by_rows([row]) == {row: doc}
    assert table.rows_of_title("  TITLE ") == [row]


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


def test_a_failed_write_leaves_the_old_generation_live(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    live = folder.generation()
    with pytest.raises(RuntimeError):
        with folder.new_generation() as generation:
            generation.documents.stage(Document("b", "T2", "A2"))
            raise RuntimeError("crash in the middle")
    assert folder.generation() == live
    assert [p.name for p in (tmp_path / "idx").glob("gen-*")] == [live.name]
    assert store.Snapshot.pin(folder).documents.row_of_id("b") is None


def test_a_failed_first_write_leaves_no_index(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    with pytest.raises(RuntimeError):
        with folder.new_generation():
            raise RuntimeError("empty corpus")
    assert not (tmp_path / "idx").exists()


def test_new_generation_replaces_and_keeps_one_old_for_open_readers(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    first = folder.generation()
    pinned = store.Snapshot.pin(folder)
    reader = pinned.documents
    build(folder, [Document("b", "T2", "A2")])
    build(folder, [Document("c", "T3", "A3")])
    assert store.Snapshot.pin(folder).documents.row_of_id("c") is not None
    assert not first.exists()
    assert len(list((tmp_path / "idx").glob("gen-*"))) == 2
    assert reader.row_of_id("a") is not None  # opened before; still readable


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(StoreError, match="no index at .*semsearch index"):
        store.IndexFolder(tmp_path / "nothing").manifest()


def test_folder_that_is_not_an_index(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(StoreError, match="not a semsearch index"):
        store.IndexFolder(tmp_path / "stuff").manifest()


def test_truncated_file_is_named_on_open(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    path = folder.generation() / "documents.sqlite"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StoreError, match="documents.sqlite: size 100 bytes"):
        store.Snapshot.pin(folder).documents


def test_a_file_that_is_no_document_table_is_named_on_open(tmp_path):
    path = tmp_path / "documents.sqlite"
    path.write_bytes(b"not a database ".ljust(8192, b"x"))
    with pytest.raises(StoreError, match="documents.sqlite: cannot read the document table"):
        store.DocumentTable.open_read_only(path)
    path.unlink()
    database = sqlite3.connect(path)
    database.execute("CREATE TABLE other (x)")
    database.close()
    with pytest.raises(StoreError, match="documents.sqlite: cannot read the document table"):
        store.DocumentTable.open_read_only(path)


def test_a_missing_document_table_is_named_on_open(tmp_path):
    with pytest.raises(StoreError, match="documents.sqlite: cannot read the document table"):
        store.DocumentTable.open_read_only(tmp_path / "documents.sqlite")


def test_an_open_table_reads_through_a_memory_map(tmp_path):
    # so pages once read stay mapped, where the kernel leaves them in memory
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    table = store.DocumentTable.open_read_only(folder.generation() / "documents.sqlite")
    (mapped,) = table._db.execute("PRAGMA mmap_size").fetchone()
    assert mapped >= (folder.generation() / "documents.sqlite").stat().st_size
    assert table.by_rows([1])[1].title == "T"


def test_newer_format_is_refused(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    path = folder.generation() / "manifest.json"
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="newer than this semsearch"):
        folder.manifest()


def test_second_writer_is_refused_while_one_writes(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    with folder.new_generation():
        with pytest.raises(StoreError, match="being written by another process"):
            with store.IndexFolder(tmp_path / "idx").new_generation():
                pass


def test_verify_names_a_bit_flipped_or_missing_file(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    assert folder.verify() == []
    path = folder.generation() / "documents.sqlite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert folder.verify() == [f"{path}: contents differ from the manifest's checksum"]
    (folder.generation() / "vectors" / "index.faiss").unlink()
    assert any(p.endswith("index.faiss: missing") for p in folder.verify())


def test_upsert_embeds_only_what_changed(tmp_path):
    table = store.DocumentTable.create(tmp_path / "d.sqlite")
    table.stage(Document("a", "T", "A", {"year": 2020}))
    assert table.upsert(Document("a", "T", "A", {"year": 2021}), 10) == ("unchanged", None)
    assert table.by_rows([1])[1].metadata == {"year": 2021}   # metadata refreshed in place
    assert table.upsert(Document("b", "t", "A."), 11) == ("duplicate", None)
    assert table.upsert(Document("a", "T", "A revised"), 12) == ("updated", 1)
    assert table.upsert(Document("c", "New", "Paper"), 13) == ("new", None)
    assert table.row_of_id("a") == 12 and table.highest_row() == 13
    assert table.delete("c") == 13 and table.delete("c") is None
    assert len(table) == 1


def test_an_update_starts_from_the_live_documents_read_under_the_lock(tmp_path):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "T", "A")])
    for number, doc_id in ((2, "b"), (3, "c")):
        with folder.new_generation(update=True) as generation:
            assert generation.base.name == folder.generation().name
            assert generation.documents.row_of_id("a") == 1
            generation.documents.upsert(Document(doc_id, f"T{number}", f"A{number}"), number)
            (generation.vectors_path / "index.faiss").write_bytes(b"vectors")
            generation.commit(manifest(number))
    assert len(store.Snapshot.pin(folder).documents) == 3


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_opening_a_damaged_file_names_it(tmp_path, damage):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "Title", "Abstract")])
    live = folder.generation()
    path = live / "documents.sqlite"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[:-100]
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=f"{path}: .*damaged"):
        store.Snapshot.pin(folder).documents
    assert any(str(path) in problem for problem in folder.verify())


def test_an_intact_file_is_hashed_once_then_trusted_by_its_stamp(tmp_path, monkeypatch):
    folder = store.IndexFolder(tmp_path / "idx")
    build(folder, [Document("a", "Title", "Abstract")])
    live = folder.generation()
    (live / store.CHECKED).unlink()          # as if no open had checked the files yet
    hashed = []
    real = store.file_checksum
    monkeypatch.setattr(store, "file_checksum", lambda path: hashed.append(path) or real(path))
    store.Snapshot.pin(folder).documents.close()
    assert len(hashed) == len(folder.manifest().files)
    hashed.clear()
    store.Snapshot.pin(folder).documents.close()
    assert hashed == []
