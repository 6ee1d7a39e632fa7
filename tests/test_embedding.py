import numpy as np
import pytest

from semsearch.embedding import BUNDLED_MODEL, SentenceTransformerEmbedder, model_name_for
from semsearch.errors import SemsearchError


def test_model_names():
    assert model_name_for(None) == BUNDLED_MODEL
    assert model_name_for(BUNDLED_MODEL) == BUNDLED_MODEL
    assert model_name_for("./my-model").endswith("/my-model")


def test_missing_local_model_is_a_clear_error(tmp_path):
    with pytest.raises(SemsearchError, match="not a local folder"):
        SentenceTransformerEmbedder(str(tmp_path / "missing"))


def test_bundled_model_gives_normalised_384_vectors_that_mean_something():
    embedder = SentenceTransformerEmbedder()
    vectors = embedder.embed_documents(["A cat sits on the mat.", "A kitten rests on a rug.",
                                        "Quarterly tax law for corporations."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert embedder.dimension == 384
