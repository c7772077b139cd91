"""Pure helpers on stacks of binary masks: outline contrast, hole filling, convex hulls,
de-duplication by IoU and resizing. All masks are N x H x W bool unless stated otherwise."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

_CHUNK = 64  # masks per vectorised step: bounds the float32 temporaries to ~16 MB at 256 px


def edge_strengths(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contrast between neighbouring pixels of an H x W x C float image (e.g. CIELAB).

    The pair (x, x+1) is measured between x-1 and x+2, so a slightly blurred edge still counts
    in full. Returns edge_h: H x (W-1) and edge_v: (H-1) x W, float32, colour distances.
    """
    padded = np.pad(features, ((2, 2), (2, 2), (0, 0)), mode="edge")
    edge_h = np.linalg.norm(padded[2:-2, 4:-1] - padded[2:-2, 1:-4], axis=2)
    edge_v = np.linalg.norm(padded[4:-1, 2:-2] - padded[1:-4, 2:-2], axis=2)
    return edge_h.astype(np.float32), edge_v.astype(np.float32)


def boundary_contrast(masks: np.ndarray, edge_h: np.ndarray, edge_v: np.ndarray) -> np.ndarray:
    """Mean edge strength over the neighbour pairs each mask separates: N float64.

    Pairs on the image border are not outline pairs, so a region cut by the frame is judged by
    the outline it has inside the image. A mask with no outline (empty or full) scores 0.
    """
    out = np.zeros(len(masks), dtype=np.float64)
    flat_h, flat_v = edge_h.ravel(), edge_v.ravel()
    for start in range(0, len(masks), _CHUNK):
        part = masks[start : start + _CHUNK]
        cross_h = (part[:, :, 1:] != part[:, :, :-1]).reshape(len(part), -1)
        cross_v = (part[:, 1:, :] != part[:, :-1, :]).reshape(len(part), -1)
        total = cross_h.astype(np.float32) @ flat_h + cross_v.astype(np.float32) @ flat_v
        count = cross_h.sum(axis=1) + cross_v.sum(axis=1)
        out[start : start + len(part)] = total / np.maximum(count, 1)
    return out


def ring_contrast(
    masks: np.ndarray, features: np.ndarray, width: int = 5, stride: int = 2
) -> np.ndarray:
    """CIELAB distance between each mask's mean colour and the mean colour of the ring of
    pixels up to ``width`` pixels outside it: N float64 (0 for an empty mask or ring).

    features: H x W x C float (e.g. CIELAB). A lesion differs from the tissue right around
    it even where the image as a whole holds other structures of its colour. Measured on
    every ``stride``-th pixel of every ``stride``-th row, which is 4x cheaper at stride 2.
    """
    out = np.zeros(len(masks), dtype=np.float64)
    sampled = features[::stride, ::stride]
    colours = sampled.reshape(-1, sampled.shape[2]).astype(np.float32)
    reach = 2 * max(1, round(width / stride)) + 1
    for start in range(0, len(masks), _CHUNK):
        part = masks[start : start + _CHUNK, ::stride, ::stride]
        ring = ndi.maximum_filter(part, size=(1, reach, reach)) & ~part
        inside = part.reshape(len(part), -1)
        ring = ring.reshape(len(part), -1)
        count_in = inside.sum(axis=1, dtype=np.float64)
        count_ring = ring.sum(axis=1, dtype=np.float64)
        mean_in = (inside.astype(np.float32) @ colours) / np.maximum(count_in, 1.0)[:, None]
        mean_ring = (ring.astype(np.float32) @ colours) / np.maximum(count_ring, 1.0)[:, None]
        gap = np.linalg.norm(mean_in - mean_ring, axis=1)
        valid = (count_in > 0) & (count_ring > 0)
        out[start : start + len(part)] = np.where(valid, gap, 0.0)
    return out


def fill_holes(masks: np.ndarray) -> np.ndarray:
    """N x H x W bool masks with every background pocket that does not reach the image border
    filled. Each mask is labelled only within its bounding box: a pocket is a hole exactly
    when it does not touch the box's edge."""
    filled = masks.copy()
    for mask in filled:
        rows = np.nonzero(mask.any(axis=1))[0]
        cols = np.nonzero(mask.any(axis=0))[0]
        if len(rows) == 0:
            continue
        box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        background, count = ndi.label(~box)
        if count == 0:
            continue
        sides = [background[0], background[-1], background[:, 0], background[:, -1]]
        outside = np.zeros(count + 1, dtype=bool)
        outside[np.concatenate(sides)] = True
        outside[0] = True  # label 0 is the mask itself
        box |= ~outside[background]  # box is a view: this fills the mask in place
    return filled


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """H x W bool: every pixel whose centre lies in the convex hull of the mask's pixel
    centres (the mask itself where that hull is flat, e.g. a one-pixel-wide line).

    Built row by row from the hull's half-planes: about 10x faster than rasterising a polygon,
    which matters because the offline source takes hulls of a few hundred masks per image.
    Only each row's outermost pixels can be hull vertices, so only they go to Qhull.
    """
    rows = np.nonzero(mask.any(axis=1))[0]
    if len(rows) == 0:
        return mask.copy()
    inside = mask[rows]
    left = inside.argmax(axis=1)
    right = mask.shape[1] - 1 - inside[:, ::-1].argmax(axis=1)
    points = np.stack([np.concatenate([rows, rows]), np.concatenate([left, right])], axis=1)
    try:
        facets = ConvexHull(points.astype(np.float64)).equations
    except QhullError:  # all centres on one line: the mask is its own hull
        return mask.copy()
    # Facet f keeps points with ny*y + nx*x + offset <= 0, i.e. a bound on x for each row.
    y = np.arange(rows[0], rows[-1] + 1, dtype=np.float64)
    ny, nx, offset = facets[:, 0:1], facets[:, 1:2], facets[:, 2:3]
    bound = (-offset - ny * y[None, :]) / np.where(nx == 0, 1.0, nx)
    upper = np.where(nx > 1e-12, bound, np.inf).min(axis=0)
    lower = np.where(nx < -1e-12, bound, -np.inf).max(axis=0)
    first = np.clip(np.ceil(lower - 1e-6), 0, mask.shape[1]).astype(np.int64)
    last = np.clip(np.floor(upper + 1e-6), -1, mask.shape[1] - 1).astype(np.int64)
    columns = np.arange(mask.shape[1])
    out = mask.copy()
    out[rows[0] : rows[-1] + 1] |= (columns >= first[:, None]) & (columns <= last[:, None])
    return out


def dedupe(masks: np.ndarray, scores: np.ndarray, max_iou: float) -> np.ndarray:
    """Indices of the masks to keep, best score first: a mask is dropped when its IoU with a
    better-scored kept mask exceeds ``max_iou`` (ties keep the lower index).

    Only pairs that can exceed the bound are compared pixel by pixel: IoU > t implies both
    area(small) > t * area(large) and a bounding-box overlap > t * area(large). Masks are
    compared as packed bits, 8 pixels per byte.
    """
    order = np.argsort(-scores, kind="stable")
    if len(order) == 0:
        return order
    packed = np.packbits(masks, axis=2)[order]
    runs = np.bitwise_count(packed)
    area = runs.sum(axis=(1, 2), dtype=np.float64)
    large = np.maximum(area[:, None], area[None, :])
    similar = np.minimum(area[:, None], area[None, :]) > max_iou * large
    maybe = np.triu(similar & (_box_overlap(runs) > max_iou * large), k=1)
    flat = packed.reshape(len(order), -1)
    first, second = np.nonzero(maybe)  # row-major: pairs come grouped by the better mask
    duplicate = np.zeros(len(first), dtype=bool)
    for start in range(0, len(first), 1024):
        a, b = first[start : start + 1024], second[start : start + 1024]
        inter = np.bitwise_count(flat[a] & flat[b]).sum(axis=1, dtype=np.float64)
        duplicate[start : start + 1024] = inter > max_iou * (area[a] + area[b] - inter)
    keep = np.ones(len(order), dtype=bool)
    for i, j in zip(first[duplicate].tolist(), second[duplicate].tolist(), strict=True):
        if keep[i]:
            keep[j] = False
    return order[keep]


def _box_overlap(runs: np.ndarray) -> np.ndarray:
    """N x N pixel area shared by the bounding boxes of N masks, from their N x H x W/8 counts
    of 8-pixel runs (columns rounded out to whole runs, so never below the true overlap)."""
    spans: list[np.ndarray] = []
    profiles = [np.asarray(runs.any(axis=2)), np.asarray(runs.any(axis=1))]
    for profile in profiles:
        first = profile.argmax(axis=1)
        last = profile.shape[1] - 1 - profile[:, ::-1].argmax(axis=1)
        empty = ~profile.any(axis=1)
        first, last = np.where(empty, 1, first), np.where(empty, 0, last)
        shared = np.minimum(last[:, None], last[None, :]) - np.maximum(
            first[:, None], first[None, :]
        )
        spans.append(np.clip(shared + 1, 0, None).astype(np.float64))
    overlap: np.ndarray = spans[0] * spans[1] * 8.0
    return overlap


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize N x h x w bool masks to N x height x width bool.

    Bilinear interpolation of the 0/1 mask cut at one half: smoother outlines than
    nearest-neighbour when enlarging, and the same area up to the outline's pixel rounding.
    """
    count, h, w = masks.shape
    if (h, w) == (height, width):
        return masks.copy()
    out = np.empty((count, height, width), dtype=bool)
    for i in range(count):
        small = Image.fromarray(masks[i].astype(np.uint8) * 255)
        out[i] = np.asarray(small.resize((width, height), Image.Resampling.BILINEAR)) > 127
    return out
