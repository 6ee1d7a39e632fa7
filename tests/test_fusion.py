import numpy as np
import pytest

from semsearch.search.fusion import FusionSettings, fuse, normalised_sum, reciprocal_rank


def ranking(rows, scores):
    return np.array(scores, dtype=np.float32), np.array(rows)


def test_reciprocal_rank_rewards_agreement():
    fused = reciprocal_rank([np.array([1, 2, 3]), np.array([3, 1, 4])], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[4] == pytest.approx(1 / 63)
    assert max(fused, key=fused.get) == 1


def test_normalised_sum_scales_each_side_to_unit_range():
    fused = normalised_sum([ranking([1, 2], [0.9, 0.5]), ranking([2, 3], [30.0, 10.0])], [0.5, 0.5])
    assert fused == pytest.approx({1: 0.5, 2: 0.5, 3: 0.0})


def test_fuse_orders_best_first_over_the_union():
    dense, lexical = ranking([1, 2, 3], [0.9, 0.8, 0.1]), ranking([3, 4], [12.0, 2.0])
    for method in ("rrf", "score"):
        fused = fuse(dense, lexical, FusionSettings(method=method))
        assert {row for row, _ in fused} == {1, 2, 3, 4}
        assert [s for _, s in fused] == sorted((s for _, s in fused), reverse=True)


def test_an_empty_side_leaves_the_other_ranking_as_it_was():
    fused = fuse(ranking([5, 6], [0.9, 0.2]), ranking([], []), FusionSettings(method="score"))
    assert [row for row, _ in fused] == [5, 6]
