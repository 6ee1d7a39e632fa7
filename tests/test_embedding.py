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


SAMPLE_TEXTS = [
    "retrieval augmented generation with knowledge graphs",
    "MM-Embed: Universal Multimodal Retrieval with Multimodal LLMs. State-of-the-art retrieval "
    "models typically address a straightforward search scenario. " * 20,  # past 256 word pieces
    "x",
]


@pytest.fixture(scope="module")
def abstracts() -> tuple[list[str], np.ndarray]:
    """Sample abstracts and their vectors from sentence-transformers, the reference."""
    from semsearch import read_documents
    from semsearch.data import sample_paths

    texts = [doc.text for doc in read_documents(sample_paths())][:64]
    return texts, SentenceTransformerEmbedder().embed_documents(texts)


@pytest.mark.parametrize("bf16_queries", [True, False])
def test_onnx_backend_matches_sentence_transformers(bf16_queries):
    """The query path, whichever runtime it takes here (bf16 where the CPU does it natively)."""
    from semsearch.bf16_queries import bf16_available
    from semsearch.embedding import OnnxEmbedder

    reference = SentenceTransformerEmbedder().embed_documents(SAMPLE_TEXTS)
    embedder = OnnxEmbedder(bf16_queries=bf16_queries)
    onnx = embedder.embed_queries(SAMPLE_TEXTS)
    assert onnx.shape == reference.shape and onnx.dtype == np.float32
    assert np.min(np.sum(onnx * reference, axis=1)) >= 0.9999
    assert embedder.query_runtime == ("openvino-bf16" if bf16_queries and bf16_available()
                                      else "onnxruntime-fp32")


def test_bf16_queries_of_every_length_match_fp32():
    from semsearch.bf16_queries import LENGTHS, bf16_available
    from semsearch.embedding import OnnxEmbedder

    if not bf16_available():
        pytest.skip("this CPU has no native bfloat16: queries run in fp32, tested above")
    embedder = OnnxEmbedder(bf16_queries=True)
    # 4 to 256 word pieces: every padded length, and texts too long for bf16 (run in fp32).
    texts = [" ".join(["protein folding"] * words) for words in (1, 3, 6, 10, 14, 20, 30, 45,
                                                                  70, 100, 200)]
    queries = embedder.embed_queries(texts)
    fp32 = OnnxEmbedder(bf16_queries=False).embed_queries(texts)
    assert np.min(np.sum(queries * fp32, axis=1)) >= 0.9999
    assert embedder._bf16_model().compiled_lengths == list(LENGTHS)
    np.testing.assert_allclose(embedder.embed_queries(texts[3:4]), queries[3:4], atol=1e-6)
    # Inputs are filled in place: a shorter text after a longer one leaves nothing behind.
    np.testing.assert_allclose(embedder.embed_queries(texts[::-1])[::-1], queries, atol=1e-6)
    # Past the longest compiled length, queries are fp32's own vectors.
    np.testing.assert_allclose(queries[-1], fp32[-1], atol=1e-6)


def test_bf16_that_fails_its_check_is_not_used_and_not_checked_again(tmp_path, monkeypatch):
    from semsearch import bf16_queries
    from semsearch.embedding import BF16_CHECK_TEXTS, OnnxEmbedder, _feed

    if not bf16_queries.bf16_available():
        pytest.skip("this CPU has no native bfloat16: the check never runs")
    embedder = OnnxEmbedder(bf16_queries=False)
    export = embedder.onnx_path().with_name("export.onnx")
    checks = [_feed(embedder._loaded_tokenizer().encode(text)) for text in BF16_CHECK_TEXTS]
    folder = tmp_path / "openvino"
    monkeypatch.setattr(bf16_queries.Bf16QueryModel, "matches_fp32", lambda self, feeds: False)
    assert bf16_queries.Bf16QueryModel.prepare(export, folder, 256, checks) is None
    assert (folder / bf16_queries.REJECTED).is_file() and not (folder / "model.bin").exists()

    def must_not_run(self, feeds):
        raise AssertionError("checked again")

    monkeypatch.setattr(bf16_queries.Bf16QueryModel, "matches_fp32", must_not_run)
    assert bf16_queries.Bf16QueryModel.prepare(export, folder, 256, checks) is None
    assert not list(tmp_path.glob("*.tmp"))

    # A model OpenVINO cannot convert leaves queries in fp32 too, and says why.
    def cannot_convert(export, folder):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(bf16_queries, "_convert", cannot_convert)
    elsewhere = tmp_path / "unconvertible"
    assert bf16_queries.Bf16QueryModel.prepare(export, elsewhere, 256, checks) is None
    assert "unsupported operation" in (elsewhere / bf16_queries.REJECTED).read_text()


def test_onnx_backend_matches_sentence_transformers_on_padded_batches(abstracts):
    """Abstracts of different lengths share a batch, so the fused attention sees padding."""
    from semsearch.embedding import OnnxEmbedder

    texts, reference = abstracts
    onnx = OnnxEmbedder(batch_size=16).embed_documents(texts)
    assert np.min(np.sum(onnx * reference, axis=1)) >= 0.9999


def test_fp32_graph_is_fused_for_bert_and_plain_otherwise(tmp_path, monkeypatch):
    import onnx

    from semsearch import embedding

    fused = embedding.OnnxEmbedder().onnx_path()
    export = fused.with_name("export.onnx")
    assert "Attention" in {node.op_type for node in onnx.load(str(fused)).graph.node}
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "mpnet"}')
    embedding._fuse(other, export, tmp_path / "other.onnx")
    assert (tmp_path / "other.onnx").read_bytes() == export.read_bytes()
    # A BERT whose fused graph does not reproduce the export runs the export.
    monkeypatch.setattr(embedding, "_same_outputs", lambda *args: False)
    embedding._fuse(embedding.bundled_model_path(), export, tmp_path / "rejected.onnx")
    assert (tmp_path / "rejected.onnx").read_bytes() == export.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_int8_backend_stays_close_on_abstracts(abstracts):
    """The int8 model embeds documents at ingest, so it is held to real abstracts.

    (A one-character text comes out near 0.977, which is why that case is not here: dynamic
    quantisation's per-batch scales suit short texts worst.)
    """
    from semsearch.embedding import OnnxEmbedder

    texts, reference = abstracts
    cosine = np.sum(OnnxEmbedder(quantized=True).embed_documents(texts) * reference, axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.98


def test_similar_length_batches_cover_everything_once_and_bound_padding():
    from semsearch.embedding import _similar_length_batches

    lengths = sorted([3, 3, 4, 9, 12, 17, 40, 41, 90, 256, 256, 256] * 5)
    batches = _similar_length_batches(lengths, batch_size=8)
    assert [i for batch in batches for i in range(len(lengths))[batch]] == list(range(len(lengths)))
    for batch in batches:
        chunk = lengths[batch]
        assert 1 <= len(chunk) <= 8
        assert chunk[-1] <= 2 * max(chunk[0], 8)


def test_neither_a_query_nor_a_build_nor_an_add_imports_torch(tmp_path):
    import subprocess
    import sys

    from semsearch import Engine, read_documents
    from semsearch.data import sample_paths

    Engine(tmp_path / "idx").build(read_documents(sample_paths()[:1]))  # the model is exported
    script = ("import sys, semsearch\n"
              f"engine = semsearch.Engine({str(tmp_path / 'again')!r})\n"
              f"engine.build(semsearch.read_documents([{str(sample_paths()[0])!r}]))\n"
              f"engine.add(semsearch.read_documents([{str(sample_paths()[1])!r}]))\n"
              f"hits = semsearch.Engine.open({str(tmp_path / 'idx')!r}).search('graph retrieval')\n"
              "assert hits, 'no hits'\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('torch', 'sentence_transformers', 'transformers')))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
