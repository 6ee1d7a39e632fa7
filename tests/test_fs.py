"""semsearch._fs: the one way .npy files are opened."""

import ast
import threading
import time

import numpy as np

from semsearch import _fs


def test_arrays_are_opened_one_at_a_time_as_their_headers_are_parsed(tmp_path, monkeypatch):
    """numpy parses a .npy header with ast.literal_eval, which CPython 3.11 does not make safe
    in two threads at once (a first hybrid search opens BM25's postings and the vectors in
    threads of their own): no two threads parse a header together."""
    path = tmp_path / "a.npy"
    np.save(path, np.arange(6, dtype=np.int32).reshape(2, 3))
    parsing, most = 0, 0
    lock = threading.Lock()
    literal_eval = ast.literal_eval

    def slow_literal_eval(text):
        nonlocal parsing, most
        with lock:
            parsing += 1
            most = max(most, parsing)
        time.sleep(0.01)
        try:
            return literal_eval(text)
        finally:
            with lock:
                parsing -= 1
    monkeypatch.setattr(ast, "literal_eval", slow_literal_eval)
    loaded = []

    def load():
        for mode in ("r", None):
            loaded.append(_fs.load_array(path, mmap_mode=mode))
    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1
    assert len(loaded) == 8 and all(array.tolist() == [[0, 1, 2], [3, 4, 5]] for array in loaded)


def test_an_array_read_into_memory_is_a_plain_array_not_a_map(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((0, 4), np.float32))
    array = _fs.load_array(path)
    assert type(array) is np.ndarray and array.shape == (0, 4) and array.dtype == np.float32
    assert isinstance(_fs.load_array(path, mmap_mode="r"), np.memmap)
