"""The map's layout: where a paper lies on a plane and which region it is in, as a fixed
function of its vector, so that a paper placed today lies where it will lie tomorrow and
papers added later never move anyone.

Fitting, on a sample of the vectors: k-means (FAISS, spherical) finds landmarks, each a small
topic; t-SNE lays the landmarks out on the plane (they are few: seconds); a coarser k-means
over the papers finds the regions' centres. Placing: a paper lies at the softmax-weighted
mean of the places of its nearest landmarks, moved a little along the two main directions in
which papers differ from their landmark (a landmark's papers make a cloud, not a point), and
is in the region of the nearest centre.

A refit may start from the layout before: its landmarks, places and region centres seed the
new ones, so that a refit moves what changed rather than everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: landmarks at most, and regions at most
MAX_LANDMARKS, MAX_REGIONS = 512, 30
#: nearest landmarks a paper's place is averaged over, and how sharply the nearest weighs
NEAREST, TEMPERATURE = 4, 0.02
#: how far a paper lies from its landmark's place, against the distance between landmarks
CLOUD = 0.3
#: papers placed at once (a matrix product with every landmark)
BATCH = 65_536


@dataclass(frozen=True)
class Layout:
    """A fitted layout: landmarks (unit vectors) and their places, the regions' centres, and
    the two directions (with a scale) that spread a landmark's papers."""

    landmarks: np.ndarray   # (L, d) float32
    positions: np.ndarray   # (L, 2) float32
    centres: np.ndarray     # (R, d) float32
    basis: np.ndarray       # (2, d) float32
    spread: float

    def place(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(places (n, 2), regions (n,)) of papers by their vectors."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.landmarks.shape[1])
        places = np.empty((len(vectors), 2), dtype=np.float32)
        regions = np.empty(len(vectors), dtype=np.int32)
        nearest_count = min(NEAREST, len(self.landmarks))
        for start in range(0, len(vectors), BATCH):
            batch = vectors[start:start + BATCH]
            similarity = batch @ self.landmarks.T
            top = np.argpartition(-similarity, nearest_count - 1, axis=1)[:, :nearest_count]
            close = np.take_along_axis(similarity, top, axis=1)
            weights = np.exp((close - close.max(axis=1, keepdims=True)) / TEMPERATURE)
            weights /= weights.sum(axis=1, keepdims=True)
            nearest = top[np.arange(len(top)), close.argmax(axis=1)]
            offsets = (batch - self.landmarks[nearest]) @ self.basis.T * self.spread
            places[start:start + BATCH] = (weights[..., None] * self.positions[top]).sum(axis=1) \
                + offsets
            regions[start:start + BATCH] = np.argmax(batch @ self.centres.T, axis=1)
        return places, regions

    @property
    def region_count(self) -> int:
        return len(self.centres)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"landmarks": self.landmarks, "positions": self.positions,
                "centres": self.centres, "basis": self.basis}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], spread: float) -> Layout:
        return cls(*(np.asarray(arrays[name], np.float32) for name in ARRAYS), float(spread))


ARRAYS = ("landmarks", "positions", "centres", "basis")


def fit(vectors: np.ndarray, seed: int = 0, before: Layout | None = None) -> Layout:
    """A layout fitted to ``vectors`` (a sample of the collection's, unit length), seeded by
    the layout ``before`` if given."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count, dimension = vectors.shape
    landmark_count = int(np.clip(round(2 * np.sqrt(count)), 1, MAX_LANDMARKS))
    seeded = before is not None and len(before.landmarks) == landmark_count
    landmarks = _centres(vectors, landmark_count, seed,
                         before.landmarks if seeded else None)
    positions = _lay_out(landmarks, seed, before.positions if seeded else None)
    region_count = int(np.clip(round(np.sqrt(len(landmarks))), 1, MAX_REGIONS))
    centres = _centres(vectors, region_count, seed + 7,
                       before.centres if before is not None and
                       len(before.centres) == region_count else None)
    nearest = np.argmax(vectors @ landmarks.T, axis=1)
    residuals = vectors - landmarks[nearest]
    basis = np.zeros((2, dimension), np.float32)
    if count > 2:
        _, _, directions = np.linalg.svd(residuals[:20_000] - residuals[:20_000].mean(axis=0),
                                         full_matrices=False)
        basis[:len(directions[:2])] = directions[:2]
    spread = 0.0
    if len(landmarks) > 1 and count > 2:
        gaps = np.linalg.norm(positions[:, None] - positions[None], axis=2)
        np.fill_diagonal(gaps, np.inf)
        typical = float(np.median(np.std(residuals @ basis.T, axis=0))) or 1.0
        spread = CLOUD * float(np.median(gaps.min(axis=1))) / typical
    return Layout(landmarks, positions, centres, basis, spread)


def _centres(vectors: np.ndarray, count: int, seed: int,
             start: np.ndarray | None = None) -> np.ndarray:
    """k-means centres (unit length) of the vectors, started from ``start`` if given."""
    import faiss

    count = min(count, len(vectors))
    if count >= len(vectors):
        return vectors.copy()
    kmeans = faiss.Kmeans(vectors.shape[1], count, niter=20, seed=seed + 1, spherical=True,
                          verbose=False, min_points_per_centroid=1,
                          max_points_per_centroid=256)
    kmeans.train(vectors, init_centroids=None if start is None else
                 np.ascontiguousarray(start, dtype=np.float32))
    centroids = kmeans.centroids.astype(np.float32)
    return centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)


def _lay_out(landmarks: np.ndarray, seed: int, start: np.ndarray | None = None) -> np.ndarray:
    """Landmarks on the plane, scaled to [-1, 1]: t-SNE where there are enough of them
    (started from ``start``, the places of the landmarks they grew from, if given)."""
    count = len(landmarks)
    if count < 5:
        centred = landmarks - landmarks.mean(axis=0)
        _, _, directions = np.linalg.svd(centred, full_matrices=False)
        positions = np.zeros((count, 2))
        positions[:, :len(directions[:2])] = centred @ directions[:2].T
    else:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        init = "pca" if start is None else np.asarray(start, np.float64) * 1e-2 / \
            max(float(np.std(start)), 1e-12)
        # one thread: for a few hundred points, OpenMP's threads cost far more than they
        # save when another process has the cores
        with threadpool_limits(1):
            positions = TSNE(n_components=2, perplexity=min(30.0, (count - 1) / 3),
                             init=init, metric="cosine", max_iter=500,
                             random_state=seed).fit_transform(landmarks)
    positions = positions - positions.mean(axis=0)
    scale = float(np.abs(positions).max()) or 1.0
    return (positions / scale).astype(np.float32)
