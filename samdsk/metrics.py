"""Segmentation and ranking metrics.

Conventions: binary masks are H x W arrays of bool or of 0/1 numbers; two empty masks agree
perfectly (Dice = IoU = 1: "no lesion" predicted for an image without one is correct), an
empty mask against a non-empty one scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from samdsk.errors import ShapeError


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient 2|A & B| / (|A| + |B|) of two binary H x W masks, in [0, 1]."""
    a, b = _binary_pair(pred, truth)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union |A & B| / |A | B| of two binary H x W masks, in [0, 1]."""
    a, b = _binary_pair(pred, truth)
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def soft_dice(mask: np.ndarray, probability: np.ndarray) -> float:
    """Soft Dice 2 sum(P * m) / (sum(P) + |m|) of a binary H x W mask against an H x W
    probability map in [0, 1]; 1.0 when both are empty (sum(P) = 0 and |m| = 0)."""
    m = _binary(mask, "mask")
    if not isinstance(probability, np.ndarray) or probability.shape != m.shape:
        raise ShapeError(f"probability must be an array of the mask's shape {m.shape}")
    p = np.asarray(probability, dtype=np.float64)
    if not np.all(np.isfinite(p)) or (p.size and (p.min() < 0.0 or p.max() > 1.0)):
        raise ShapeError("probability values must be finite and within [0, 1]")
    denominator = float(p.sum()) + int(m.sum())
    return 1.0 if denominator == 0 else 2.0 * float(p[m].sum()) / denominator


def multiclass_dice(pred_classes: np.ndarray, truth_classes: np.ndarray, num_classes: int) -> float:
    """Mean Dice over the foreground classes 1..num_classes of two H x W integer class maps
    (0 = background); a class absent from both maps counts as 1.0, as for ``dice``."""
    if num_classes < 1:
        raise ShapeError(f"num_classes must be at least 1; got {num_classes}")
    for name, arr in (("pred_classes", pred_classes), ("truth_classes", truth_classes)):
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.integer):
            raise ShapeError(f"{name} must be an integer array")
        if arr.size and (arr.min() < 0 or arr.max() > num_classes):
            raise ShapeError(f"{name} values must be in [0, {num_classes}]")
    return float(
        np.mean([dice(pred_classes == c, truth_classes == c) for c in range(1, num_classes + 1)])
    )


def summarize(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, median, population standard deviation (ddof=0) and count n of finite values."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ShapeError("summarize needs at least one value")
    if not np.all(np.isfinite(arr)):
        raise ShapeError("summarize needs finite values")
    return {
        "mean": float(arr.mean()),
        "median": float(np.median(arr)),
        "std": float(arr.std()),
        "n": int(arr.size),
    }


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation of two equally long sequences (at least 2 values), in [-1, 1].

    NaN when either sequence is constant: ranks then carry no order to correlate.
    """
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.size != b.size or a.size < 2:
        raise ShapeError(f"need two sequences of equal length >= 2; got {a.size} and {b.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ShapeError("spearman needs finite values")
    if np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(stats.spearmanr(a, b).statistic)


def paired_difference(
    baseline: Sequence[float] | np.ndarray,
    other: Sequence[float] | np.ndarray,
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, float | int | list[float]]:
    """How ``other`` differs from ``baseline`` on the same images (per-image scores in [0, 1],
    same order), in points (x100): the mean difference, its 95% percentile-bootstrap interval
    (images resampled in pairs, so what both models find hard cancels out), and how many
    images got better, worse or stayed within 0.001.

    The interval is what a one-split comparison can resolve: a difference inside it is not
    one the test set can tell from the draw of its images.
    """
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ShapeError(f"paired scores need two equal, non-empty lists; got {a.shape}, {b.shape}")
    diff = 100.0 * (b - a)
    picks = np.random.default_rng(seed).integers(0, diff.size, size=(resamples, diff.size))
    means = diff[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "mean_points": float(diff.mean()),
        "ci95_points": [float(low), float(high)],
        "better": int((diff > 0.1).sum()),
        "worse": int((diff < -0.1).sum()),
        "tied": int((np.abs(diff) <= 0.1).sum()),
        "images": int(diff.size),
    }


def _binary_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _binary(pred, "pred"), _binary(truth, "truth")
    if a.shape != b.shape:
        raise ShapeError(f"pred {a.shape} and truth {b.shape} differ in shape")
    return a, b


def _binary(mask: np.ndarray, name: str) -> np.ndarray:
    """A bool view of an H x W mask of bool or of 0/1 numbers."""
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        raise ShapeError(f"{name} must be an H x W array")
    if mask.dtype == np.bool_:
        return mask
    if not np.issubdtype(mask.dtype, np.number) or not np.all((mask == 0) | (mask == 1)):
        raise ShapeError(f"{name} must be bool or hold only 0 and 1; got dtype {mask.dtype}")
    return np.asarray(mask != 0)
