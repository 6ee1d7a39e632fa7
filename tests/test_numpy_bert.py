"""The numpy forward pass gives the ONNX model's vectors, and a one-shot query runs on it
without starting onnxruntime."""

import json
import shutil
import subprocess
import sys

import numpy as np

from semsearch.embedding import NUMPY_QUERIES, OnnxEmbedder, bundled_model_path
from semsearch.numpy_bert import NumpyBert

TEXTS = ["protein folding in cancer cells", "x", "Über die Quantenmechanik der Moleküle: αβγ",
         "Transformer language models memorise rare facts from their pretraining corpora.",
         "Dense retrieval maps queries and documents to vectors and ranks them. " * 40]


def test_the_numpy_pass_gives_the_onnx_models_vectors():
    onnx = OnnxEmbedder()
    expected = onnx.embed_documents(TEXTS)
    model = NumpyBert.load(bundled_model_path())
    tokenizer = onnx._loaded_tokenizer()
    for text, wanted in zip(TEXTS, expected):
        encoding = tokenizer.encode(text)
        pooled = model.hidden_states(encoding.ids, encoding.type_ids).mean(axis=0)
        got = pooled / np.linalg.norm(pooled)
        assert float(got @ wanted) > 0.99999
        assert np.abs(got - wanted).max() < 1e-5


def test_single_queries_run_on_numpy_first_and_on_onnxruntime_after():
    fresh = OnnxEmbedder()
    reference = OnnxEmbedder().embed_documents(TEXTS[:1])
    for _ in range(NUMPY_QUERIES):
        assert np.abs(fresh.embed_queries(TEXTS[:1]) - reference).max() < 1e-5
    assert fresh._session is None  # onnxruntime not started
    assert np.abs(fresh.embed_queries(TEXTS[:1]) - reference).max() < 1e-5
    assert fresh._session is not None


def test_a_model_it_does_not_reproduce_is_left_to_onnxruntime(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(bundled_model_path(), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    assert NumpyBert.load(folder) is None
    (folder / "model.safetensors").unlink()
    assert NumpyBert.load(bundled_model_path()) is not None and NumpyBert.load(folder) is None


def test_a_one_shot_search_does_not_start_onnxruntime(tmp_path):
    from semsearch import Engine, read_documents
    from semsearch.data import sample_paths

    Engine(tmp_path / "idx").build(read_documents(sample_paths()[:1]))
    script = ("import sys, semsearch\n"
              f"hits = semsearch.Engine.open({str(tmp_path / 'idx')!r}).search('graph retrieval')\n"
              "assert hits, 'no hits'\n"
              "print('onnxruntime' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_a_text_runs_on_one_blas_thread_and_the_process_keeps_its_threads(monkeypatch):
    """A query's products are too small to share: a second BLAS thread would only spin on the
    core a one-shot search's other half needs. The limit holds for the pass alone."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from semsearch import numpy_bert

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    linear, seen = numpy_bert._linear, []

    def watched(*args):
        seen.append(blas_threads())
        return linear(*args)
    monkeypatch.setattr(numpy_bert, "_linear", watched)
    model = NumpyBert.load(bundled_model_path())
    with threadpool_limits(2, user_api="blas"):
        model.hidden_states([101, 7592, 102], [0, 0, 0])
        assert blas_threads() == {2}
    assert seen and all(threads == {1} for threads in seen)
