"""Ranking papers for a reader's tags.

A tag is a few papers marked for it (and perhaps some against it). Each tag is a small model
with three sides (measured on CiteULike readers' libraries and tags: benchmarks/README.md,
"Recommendations"):

1. a direction: a logistic regression of the papers for the tag against the papers against
   it and a random sample of the collection (standing in for "everything else"); its
   top ``POOL`` papers in the whole index are the tag's neighbourhood;
2. a walk: personalized PageRank from the tag's papers over a nearest-neighbour graph of that
   neighbourhood, so a paper close to papers that are close to the tag's papers counts,
   where one direction cannot reach a broad tag's several topics;
3. the words: BM25 of the tag's papers' titles and abstracts, as one query.

A paper's score for a tag is the weighted mean of the three, each scaled so that the tag's
best paper by it is 1 and its 200th is 0: from 0 to 1, comparable across tags; across tags a
paper takes its best one. The reason given with a paper is its tag and the paper of that tag
it is closest to.

The inbox ranks a day's new papers among themselves: the direction, and the walk over the
graph of the tag's papers and the new ones alone, each scaled from the day's best (1) to its
worst (0). The words are left out there: BM25 scores only the new papers among the tag's top
``POOL`` by words, and a day's few such papers outweighed better ones (benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: papers of a tag's neighbourhood searched in the whole index by its direction (and the
#: SCALE_DEPTH best by its words join them)
POOL = 2000
#: neighbours each paper of the neighbourhood links to, in the walk's graph
GRAPH_NEIGHBOURS = 10
#: the walk's chance, each step, to go on rather than restart at the tag's papers
WALK_ON = 0.8
WALK_STEPS = 20
#: random papers the direction is learned against
BACKGROUND = 200
#: how the three sides weigh: the direction (meaning), the walk, the words the tag's papers
#: share with a paper (BM25 of their texts); each side's scores are scaled to 0..1 over its
#: best SCALE_DEPTH papers, so a paper's score is 1 at most (the best by all three). Equal:
#: the walk weighed double did better for readers of 20 papers only (benchmarks/README.md)
MEANING, WALK, WORDS = 1.0, 1.0, 1.0
SCALE_DEPTH = 200

#: papers' vectors by id, for the ids in the index (those not in it are left out)
Vectors = Callable[[Sequence[str]], "tuple[list[str], np.ndarray]"]


@dataclass(frozen=True)
class Scored:
    """A paper scored for a tag: its score, and the tag's paper it is closest to."""

    paper: str
    score: float
    tag: str
    closest: str
    similarity: float


class TagModel:
    """One tag's direction and its papers' vectors."""

    def __init__(self, name: str, liked: np.ndarray, liked_ids: list[str], disliked: np.ndarray,
                 background: np.ndarray, text: str = ""):
        self.name = name
        #: the tag's papers' titles and abstracts, as one BM25 query
        self.text = text
        self.liked = np.asarray(liked, dtype=np.float32)
        self.liked_ids = liked_ids
        self.direction = direction(self.liked, np.asarray(disliked, dtype=np.float32),
                                   np.asarray(background, dtype=np.float32))

    def rank(self, ids: list[str], vectors: np.ndarray,
             words: dict[str, float] | None = None, among: int | None = None) -> np.ndarray:
        """Scores of the papers ``ids`` (the tag's neighbourhood, and any others asked
        about), by direction, walk and (``words``: BM25's scores of the tag's papers' words,
        where a paper has any; None leaves that side out) words, each scaled over its best
        SCALE_DEPTH papers; or, with ``among``, over the first ``among`` papers, all of them
        (a day's new papers, which must be told apart however far they lie from the tag)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        nodes = np.concatenate([self.liked, vectors])
        start = np.zeros(len(nodes))
        start[:len(self.liked)] = 1.0 / max(len(self.liked), 1)
        walked = personalized_pagerank(nodes, start)[len(self.liked):]
        sides = [(MEANING, vectors @ self.direction), (WALK, walked)]
        if words is not None:
            sides.append((WORDS, np.array([words.get(paper, 0.0) for paper in ids])))
        return sum(weight * _scaled(scores, among) for weight, scores in sides) / \
            sum(weight for weight, _ in sides)

    def closest(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each vector, the position of the tag's paper it is closest to, and how close."""
        similarity = np.asarray(vectors, dtype=np.float32) @ self.liked.T
        best = similarity.argmax(axis=1)
        return best, similarity[np.arange(len(best)), best]


def direction(liked: np.ndarray, disliked: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Where a tag's papers lie apart from the rest: logistic regression weights, liked
    against disliked and background papers (balanced), at unit length; the mean of the liked
    papers where there is nothing to learn against."""
    from sklearn.linear_model import LogisticRegression

    others = np.concatenate([disliked, background]) if len(disliked) else background
    if not len(others):
        weights = liked.mean(axis=0)
    else:
        features = np.concatenate([liked, others])
        labels = np.r_[np.ones(len(liked)), np.zeros(len(others))]
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
        weights = model.fit(features, labels).coef_[0]
    return (weights / max(float(np.linalg.norm(weights)), 1e-12)).astype(np.float32)


def personalized_pagerank(vectors: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Where a walk that restarts at ``start`` (a distribution over the rows) spends its time,
    over the graph linking each row to its GRAPH_NEIGHBOURS most similar rows (both ways,
    weighted by similarity, symmetrically normalized)."""
    import faiss
    from scipy import sparse

    count = len(vectors)
    links = min(GRAPH_NEIGHBOURS, count - 1)
    if links < 1:
        return start.copy()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    # each row's nearest rows by inner product (FAISS, on every core), itself left out
    similarity, nearest = faiss.knn(vectors, vectors, links + 1,
                                    metric=faiss.METRIC_INNER_PRODUCT)
    itself = nearest == np.arange(count)[:, None]
    keep = np.where(itself.any(axis=1)[:, None], ~itself, np.arange(links + 1) < links)
    nearest = nearest[keep].reshape(count, links)
    weights = np.maximum(similarity[keep].reshape(count, links), 0.0)
    graph = sparse.csr_matrix((weights.ravel(), (np.repeat(np.arange(count), links),
                                                 nearest.ravel())), shape=(count, count))
    graph = graph + graph.T
    degree = np.asarray(graph.sum(axis=1)).ravel()
    scale = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    graph = (scale @ graph @ scale).tocsr()
    visits = start.copy()
    for _ in range(WALK_STEPS):
        visits = WALK_ON * (graph @ visits) + (1 - WALK_ON) * start
    return visits


def _scaled(scores: np.ndarray, among: int | None = None) -> np.ndarray:
    """Scores scaled so that the best is 1 and the SCALE_DEPTH-th is 0, lower ones 0 too;
    with ``among``, the best and the worst of the first ``among`` scores are 1 and 0."""
    scores = np.asarray(scores, dtype=np.float64)
    scale = scores[:among] if among else scores
    if not len(scale):
        return scores
    depth = len(scale) if among else min(SCALE_DEPTH, len(scale))
    best, floor = float(scale.max()), float(-np.partition(-scale, depth - 1)[depth - 1])
    return np.clip((scores - floor) / (best - floor or 1.0), 0.0, 1.0)
