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


def test_a_side_scale_is_set_by_its_top_depth_and_clips_what_lies_past_it():
    from semsearch.search.fusion import Scale

    scale = Scale.of(ranking([1, 2, 3, 4], [0.9, 0.7, 0.5, 0.1]), depth=3)
    assert scale(np.array([0.9, 0.7, 0.5, 0.1])).tolist() == pytest.approx([1, 0.5, 0, 0])


def test_a_lone_bm25_match_is_the_best_of_its_side():
    """BM25 lists only papers with the query's words: with fewer than depth of them, a paper
    without them (score 0) is the floor, so one match scales to 1, not 0."""
    fused = fuse(ranking([7, 8], [0.8, 0.2]), ranking([8], [3.5]), FusionSettings(depth=200))
    assert dict(fused) == pytest.approx({7: 0.5, 8: 0.5})


def test_asking_deeper_does_not_change_the_scores_of_the_first():
    dense = ranking(list(range(10)), [1 - i / 10 for i in range(10)])
    lexical = ranking(list(range(9, -1, -1)), [10 - i for i in range(10)])
    shallow = dict(fuse((dense[0][:5], dense[1][:5]), (lexical[0][:5], lexical[1][:5]),
                        FusionSettings(depth=5)))
    deep = dict(fuse(dense, lexical, FusionSettings(depth=5)))
    assert {row: deep[row] for row in shallow} == pytest.approx(shallow)
