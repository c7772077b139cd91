"""Fusing a constructed annotation with the model's probability map."""

from __future__ import annotations

import numpy as np
import pytest

from samdsk.errors import ConfigError, ShapeError
from samdsk.fusion import fuse_with_model
from samdsk.matching import Match, MultiClassMatch


def one_class(mask: np.ndarray, score: float = 0.9) -> MultiClassMatch:
    chosen = (0,) if mask.any() else ()
    solver = "exact" if mask.any() else "empty"
    return MultiClassMatch(mask.astype(np.uint8), (Match(mask, score, chosen, solver),), score)


def square(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.bool_)
    mask[top : top + side, left : left + side] = True
    return mask


def test_band_one_half_keeps_the_proposals_union() -> None:
    union = square(40, 10, 10, 12)
    p = np.random.default_rng(0).random((1, 40, 40)).astype(np.float32)
    fused = fuse_with_model(one_class(union), p, band=0.5)
    assert np.array_equal(fused.class_mask, union.astype(np.uint8))


def test_the_model_decides_where_it_is_confident_the_proposals_where_it_is_not() -> None:
    union = square(40, 10, 10, 12)  # rows and columns 10..21
    p = np.full((1, 40, 40), 0.05, dtype=np.float32)
    p[0, 10:22, 10:22] = 0.5  # unsure inside the proposal: the proposal decides
    p[0, 10:22, 22:24] = 0.9  # confident just outside it: the model adds these columns
    p[0, 10:12, 10:22] = 0.1  # confident background inside it: the model removes these rows
    fused = fuse_with_model(one_class(union, 0.8), p, band=0.2, reach_fraction=0.1).class_mask
    expected = np.zeros((40, 40), dtype=np.uint8)
    expected[12:22, 10:22] = 1
    expected[10:22, 22:24] = 1
    assert np.array_equal(fused, expected)


def test_confident_regions_far_from_the_annotation_are_not_brought_back() -> None:
    union = square(60, 5, 5, 10)
    p = np.zeros((1, 60, 60), dtype=np.float32)
    p[0, 5:15, 5:15] = 0.95
    p[0, 40:50, 40:50] = 0.95  # a region the matching left out
    fused = fuse_with_model(one_class(union), p, band=0.2).class_mask
    assert fused[45, 45] == 0 and fused[10, 10] == 1


def test_a_class_matched_as_absent_stays_absent() -> None:
    p = np.full((1, 30, 30), 0.9, dtype=np.float32)
    fused = fuse_with_model(one_class(np.zeros((30, 30), np.bool_), 0.2), p, band=0.2)
    assert not fused.class_mask.any()
    assert fused.score == 0.2


def test_overlapping_classes_go_to_the_higher_probability() -> None:
    first, second = square(20, 0, 0, 12), square(20, 6, 6, 12)
    p = np.zeros((2, 20, 20), dtype=np.float32)
    p[0][first], p[1][second] = 0.5, 0.5
    p[1, 6:12, 6:12] = 0.6  # the overlap is more likely the second class
    per_class = (Match(first, 0.9, (0,), "exact"), Match(second, 0.8, (1,), "exact"))
    match = MultiClassMatch(np.zeros((20, 20), np.uint8), per_class, 0.8)
    fused = fuse_with_model(match, p, band=0.2).class_mask
    assert fused[8, 8] == 2 and fused[2, 2] == 1 and fused[15, 15] == 2
    assert fused[0, 19] == 0


def test_bad_settings_and_shapes_are_rejected() -> None:
    match = one_class(square(10, 2, 2, 4))
    with pytest.raises(ConfigError):
        fuse_with_model(match, np.zeros((1, 10, 10), np.float32), band=0.6)
    with pytest.raises(ShapeError):
        fuse_with_model(match, np.zeros((2, 10, 10), np.float32))
    with pytest.raises(ShapeError):
        fuse_with_model(match, np.zeros((1, 12, 10), np.float32))
