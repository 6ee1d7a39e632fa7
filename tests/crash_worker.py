"""A writer to be killed: runs adds, removes, merges and re-trainings on an index until it is
killed. Used by test_crash.py.

Every operation is a pure function of its number and the ids the index holds, so the test can
compute every state the index may legally be in. It says what it is doing on stdout, a line
at a time: "begin N add|remove|reindex", "merging N" when the merge that follows an add
starts, "committed N" when operation N is done.

Run as: python crash_worker.py INDEX_PATH FIRST_OPERATION [MERGE_AT_SEGMENTS FOLD_AT_ROWS]
"""

from __future__ import annotations

import random
import sys

from semsearch.documents import Document


#: with merges at more than 2 segments and folds at 130 rows (as test_crash.py sets them),
#: each round of six has a merge after its third add and a fold after its fourth
ROUND = ("add", "remove", "add", "add", "add", "reindex")


def kind_of(number: int) -> str:
    return ROUND[number % len(ROUND)]


def operation(number: int, ids: set[str]) -> tuple[list[Document], list[str]]:
    """(documents to add, ids to remove) for operation ``number`` on an index holding ``ids``."""
    rng = random.Random(number)
    kind = kind_of(number)
    if kind == "remove":
        return [], rng.sample(sorted(ids), 25)
    if kind == "reindex":
        return [], []
    added = [Document(f"w{number}-{j}", f"Added paper {number}.{j} on topic{rng.randrange(50)}",
                      f"An abstract about subject{rng.randrange(40)} and method{j}.")
             for j in range(30)]
    updated = [Document(doc_id, f"Revised paper {doc_id} in operation {number}",
                        f"A revised abstract about subject{rng.randrange(40)}.")
               for doc_id in rng.sample(sorted(ids), 5)]
    return added + updated, []


def apply(number: int, ids: set[str]) -> set[str]:
    """The ids after operation ``number``."""
    documents, removed = operation(number, ids)
    return (ids | {doc.id for doc in documents}) - set(removed)


def main(path: str, first: int, merge_at: int | None, fold_at: int | None) -> None:
    from conftest import HashingEmbedder
    from semsearch.engine import Engine
    from semsearch.index import segments

    if merge_at is not None:
        segments.MERGE_AT_SEGMENTS, segments.FOLD_AT_ROWS = merge_at, fold_at
    engine = Engine.open(path, embedder=HashingEmbedder())
    ids = set(engine.ids())
    engine.close()
    print("ready", flush=True)
    number = first

    def progress(stage, done, total):
        if stage in ("merging", "folding") and not done:
            print(f"merging {number}", flush=True)

    while True:
        documents, removed = operation(number, ids)
        kind = kind_of(number)
        print(f"begin {number} {kind}", flush=True)
        with Engine.open(path, embedder=HashingEmbedder()) as engine:
            if kind == "add":
                engine.add(documents, progress)
            elif kind == "remove":
                engine.remove(removed)
            else:
                engine.rebuild(progress=progress)
        ids = apply(number, ids)
        print(f"committed {number}", flush=True)
        number += 1


if __name__ == "__main__":
    extra = [int(a) for a in sys.argv[3:5]] or [None, None]
    main(sys.argv[1], int(sys.argv[2]), *extra)
