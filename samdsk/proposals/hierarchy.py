"""Agglomerative merging of an over-segmentation into a hierarchy of regions.

Selective-search style: start from a label image (superpixels or graph-based segments), merge
the most similar pair of adjacent regions, record the merged region, repeat until one region is
left. Each merge yields one candidate region, so N segments give N - 1 candidates at every scale
between a segment and the whole image.
"""

from __future__ import annotations

import heapq
from enum import StrEnum

import numpy as np

from samdsk.errors import ConfigError


class MergeCriterion(StrEnum):
    """Which adjacent pair merges first.

    COLOUR: closest mean colour. BOUNDARY: weakest mean edge strength along the shared border
    (keeps shaded objects whole). MIXED: the sum of both. Each cost is multiplied by
    ``1 + size_weight * (combined area / image area)`` so that small regions merge first and
    the hierarchy stays balanced.
    """

    COLOUR = "colour"
    BOUNDARY = "boundary"
    MIXED = "mixed"


def adjacency(
    labels: np.ndarray, edge_h: np.ndarray, edge_v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Region adjacency graph of an H x W int label image with labels 0..N-1.

    edge_h: H x (W-1) edge strength between horizontal neighbours; edge_v: (H-1) x W between
    vertical ones. Returns (i, j, strength_sum, pair_count) for each adjacent pair i < j.
    """
    n = int(labels.max()) + 1
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()]).astype(np.int64)
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()]).astype(np.int64)
    strength = np.concatenate([edge_h.ravel(), edge_v.ravel()])
    differ = a != b
    a, b, strength = a[differ], b[differ], strength[differ]
    keys = np.minimum(a, b) * n + np.maximum(a, b)
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=strength)
    counts = np.bincount(inverse).astype(np.float64)
    return unique // n, unique % n, sums, counts


def merge_regions(
    labels: np.ndarray,
    features: np.ndarray,
    edge_h: np.ndarray,
    edge_v: np.ndarray,
    criterion: MergeCriterion,
    size_weight: float = 1.0,
) -> np.ndarray:
    """Merge an H x W int label image (labels 0..N-1) bottom-up; returns M x N bool, row m
    marking the segments of the m-th merged region (M = N - 1 for a connected image).

    features: H x W x C float, averaged per region for the colour criterion (e.g. CIELAB).
    edge_h, edge_v: edge strengths between neighbouring pixels, as for ``adjacency``.
    """
    if criterion not in tuple(MergeCriterion):
        raise ConfigError(f"unknown merge criterion {criterion!r}; valid: {list(MergeCriterion)}")
    n = int(labels.max()) + 1
    flat = labels.ravel()
    size: list[float] = np.bincount(flat, minlength=n).astype(np.float64).tolist()
    colour = [
        np.bincount(flat, weights=features[..., c].ravel(), minlength=n)
        for c in range(features.shape[2])
    ]
    sums = list(np.stack(colour, axis=1))
    members = [np.array([r]) for r in range(n)]
    border: list[dict[int, list[float]]] = [{} for _ in range(n)]
    for i, j, s, c in zip(*(x.tolist() for x in adjacency(labels, edge_h, edge_v)), strict=True):
        border[i][j] = [s, c]
        border[j][i] = [s, c]
    total = float(labels.size)

    def cost(i: int, j: int) -> float:
        value = 0.0
        if criterion != MergeCriterion.BOUNDARY:
            value += float(np.linalg.norm(sums[i] / size[i] - sums[j] / size[j]))
        if criterion != MergeCriterion.COLOUR:
            strength, count = border[i][j]
            value += strength / count
        return value * (1.0 + size_weight * float(size[i] + size[j]) / total)

    heap = [(cost(i, j), i, j) for i in range(n) for j in border[i] if i < j]
    heapq.heapify(heap)
    alive = [s > 0 for s in size]
    merged: list[np.ndarray] = []
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        k = _merge_pair(i, j, size, sums, members, border, alive)
        merged.append(members[k])
        for q in border[k]:
            heapq.heappush(heap, (cost(q, k), q, k))
    regions = np.zeros((len(merged), n), dtype=bool)
    for row, segments in enumerate(merged):
        regions[row, segments] = True
    return regions


def _merge_pair(
    i: int,
    j: int,
    size: list[float],
    sums: list[np.ndarray],
    members: list[np.ndarray],
    border: list[dict[int, list[float]]],
    alive: list[bool],
) -> int:
    """Append region k = i + j to every per-region list, rewire its neighbours, return k."""
    k = len(size)
    size.append(size[i] + size[j])
    sums.append(sums[i] + sums[j])
    members.append(np.concatenate([members[i], members[j]]))
    joined: dict[int, list[float]] = {}
    for old in (i, j):
        for q, (strength, count) in border[old].items():
            if q in (i, j):
                continue
            entry = joined.setdefault(q, [0.0, 0.0])
            entry[0] += strength
            entry[1] += count
            del border[q][old]
    border.append(joined)
    for q, entry in joined.items():
        border[q][k] = entry
    border[i], border[j] = {}, {}
    alive[i] = alive[j] = False
    alive.append(True)
    return k
