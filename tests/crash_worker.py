"""A writer to be killed: runs add and remove operations on an index until SIGKILL.

Used by test_crash.py. Every operation is a pure function of its number and the ids the
index holds, so the test can compute every state the index may legally be in.
Run as: python crash_worker.py INDEX_PATH FIRST_OPERATION
"""

from __future__ import annotations

import random
import sys

from semsearch.documents import Document


def operation(number: int, ids: set[str]) -> tuple[list[Document], list[str]]:
    """(documents to add, ids to remove) for operation ``number`` on an index holding ``ids``."""
    rng = random.Random(number)
    if number % 3 == 2:
        return [], rng.sample(sorted(ids), 25)
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


def main(path: str, first: int) -> None:
    from conftest import HashingEmbedder
    from semsearch.engine import Engine

    engine = Engine.open(path, embedder=HashingEmbedder())
    ids = {doc.id for batch in engine.documents.batches(1000) for _, doc in batch}
    engine.close()
    print("ready", flush=True)
    number = first
    while True:
        documents, removed = operation(number, ids)
        with Engine.open(path, embedder=HashingEmbedder()) as engine:
            engine.add(documents) if documents else engine.remove(removed)
        ids = apply(number, ids)
        print(f"committed {number}", flush=True)
        number += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
