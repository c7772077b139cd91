"""Segmentation and ranking metrics, including their empty-mask conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from samdsk.errors import ShapeError
from samdsk.metrics import (
    dice,
    iou,
    multiclass_dice,
    paired_difference,
    soft_dice,
    spearman,
    summarize,
)

EMPTY = np.zeros((4, 4), dtype=np.bool_)


def square(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((4, 4), dtype=np.bool_)
    mask[y0:y1, x0:x1] = True
    return mask


def test_dice_and_iou_of_overlapping_masks() -> None:
    a, b = square(0, 2, 0, 4), square(1, 3, 0, 4)  # 8 and 8 pixels, 4 shared
    assert dice(a, b) == pytest.approx(0.5)
    assert iou(a, b) == pytest.approx(4 / 12)
    assert dice(a, a) == 1.0 and iou(a, a) == 1.0


def test_empty_masks_agree_and_disagree_with_non_empty() -> None:
    full = square(0, 4, 0, 4)
    assert dice(EMPTY, EMPTY) == 1.0 and iou(EMPTY, EMPTY) == 1.0
    assert dice(EMPTY, full) == 0.0 and iou(full, EMPTY) == 0.0


def test_zero_one_integer_masks_are_accepted() -> None:
    a = square(0, 2, 0, 4)
    assert dice(a.astype(np.uint8), a.astype(np.int64)) == 1.0
    assert iou(a.astype(np.float32), a) == 1.0


@pytest.mark.parametrize(
    ("pred", "truth"),
    [
        (np.full((4, 4), 255, dtype=np.uint8), EMPTY),
        (np.zeros((4, 5), dtype=np.bool_), EMPTY),
        (np.zeros((2, 4, 4), dtype=np.bool_), np.zeros((2, 4, 4), dtype=np.bool_)),
        (np.array([["a"] * 4] * 4), EMPTY),
    ],
)
def test_masks_breaking_the_contract_are_refused(pred: np.ndarray, truth: np.ndarray) -> None:
    with pytest.raises(ShapeError):
        dice(pred, truth)
    with pytest.raises(ShapeError):
        iou(pred, truth)


def test_soft_dice() -> None:
    mask = square(0, 2, 0, 2)
    p = np.where(mask, 0.5, 0.0)
    assert soft_dice(mask, p) == pytest.approx(2 * 2.0 / (2.0 + 4))
    assert soft_dice(mask, mask.astype(np.float32)) == 1.0
    assert soft_dice(EMPTY, np.zeros((4, 4))) == 1.0
    assert soft_dice(EMPTY, p) == 0.0
    with pytest.raises(ShapeError):
        soft_dice(mask, np.full((4, 4), 1.5))
    with pytest.raises(ShapeError):
        soft_dice(mask, np.zeros((3, 4)))


def test_multiclass_dice_averages_foreground_classes() -> None:
    truth = np.zeros((4, 4), dtype=np.uint8)
    truth[:2] = 1
    truth[2:, :2] = 2
    pred = truth.copy()
    pred[2:, :2] = 0  # class 2 missed entirely
    assert multiclass_dice(truth, truth, 2) == 1.0
    assert multiclass_dice(pred, truth, 2) == pytest.approx(0.5)
    assert multiclass_dice(truth, truth, 3) == 1.0  # class 3 absent from both
    with pytest.raises(ShapeError):
        multiclass_dice(truth, truth, 1)  # class 2 out of range
    with pytest.raises(ShapeError):
        multiclass_dice(truth.astype(np.float32), truth, 2)


def test_summarize() -> None:
    summary = summarize([1.0, 2.0, 3.0, 10.0])
    assert summary == {"mean": 4.0, "median": 2.5, "std": pytest.approx(3.5355, abs=1e-4), "n": 4}
    assert summarize(np.array([0.5]))["std"] == 0.0
    with pytest.raises(ShapeError):
        summarize([])
    with pytest.raises(ShapeError):
        summarize([1.0, float("inf")])


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    x, y = [0.1, 0.4, 0.4, 0.9, 0.3], [1.0, 3.0, 2.0, 5.0, 3.0]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ShapeError):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ShapeError):
        spearman([1], [1])


def test_paired_difference_counts_and_brackets_the_mean() -> None:
    baseline = np.array([0.80, 0.90, 0.70, 0.95, 0.60])
    other = baseline + np.array([0.02, -0.01, 0.0, 0.03, 0.0005])
    result = paired_difference(baseline, other)
    assert result["mean_points"] == pytest.approx(100 * np.mean(other - baseline))
    low, high = result["ci95_points"]  # type: ignore[misc]
    assert low <= result["mean_points"] <= high
    assert (result["better"], result["worse"], result["tied"], result["images"]) == (2, 1, 2, 5)


def test_paired_difference_interval_shrinks_when_every_image_moves_alike() -> None:
    rng = np.random.default_rng(3)
    baseline = rng.uniform(0.5, 1.0, 40)
    steady = paired_difference(baseline, baseline + 0.01)  # +1 point on every image
    assert steady["ci95_points"] == pytest.approx([1.0, 1.0])
    noisy = paired_difference(baseline, baseline + rng.normal(0.01, 0.05, 40))
    low, high = noisy["ci95_points"]  # type: ignore[misc]
    assert high - low > 1.0  # 40 images with 5-point scatter cannot pin 1 point down


def test_paired_difference_refuses_unpaired_scores() -> None:
    with pytest.raises(ShapeError):
        paired_difference([0.5, 0.6], [0.5])
    with pytest.raises(ShapeError):
        paired_difference([], [])
