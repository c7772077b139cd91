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


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """H x W bool mask with every background pocket not connected to the image border filled."""
    background, count = ndi.label(~mask)
    if count == 0:
        return mask.copy()
    edge = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    outside = np.zeros(count + 1, dtype=bool)
    outside[edge] = True
    outside[0] = True  # label 0 is the mask itself
    filled: np.ndarray = mask | ~outside[background]
    return filled


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """H x W bool convex hull of all pixels of a mask (pixels as unit squares).

    Scan-line fill from the hull's half-planes: about 10x faster than rasterising a polygon,
    which matters because the offline source takes hulls of a few hundred masks per image.
    """
    rows = np.nonzero(mask.any(axis=1))[0]
    if len(rows) == 0:
        return mask.copy()
    inside = mask[rows]
    left = inside.argmax(axis=1)
    right = mask.shape[1] - 1 - inside[:, ::-1].argmax(axis=1)
    ys = np.concatenate([rows - 0.5, rows + 0.5, rows - 0.5, rows + 0.5])
    xs = np.concatenate([left - 0.5, left - 0.5, right + 0.5, right + 0.5])
    try:
        facets = ConvexHull(np.stack([ys, xs], axis=1).astype(np.float64)).equations
    except QhullError:  # all corners on one line: a one-pixel-wide bar is its own hull
        return mask.copy()
    # Facet f keeps points with ny*y + nx*x + offset <= 0, i.e. a bound on x for each row.
    y = np.arange(rows[0], rows[-1] + 1, dtype=np.float64)
    ny, nx, offset = facets[:, 0:1], facets[:, 1:2], facets[:, 2:3]
    bound = (-offset - ny * y[None, :]) / np.where(nx == 0, 1.0, nx)
    upper = np.where(nx > 1e-12, bound, np.inf).min(axis=0)
    lower = np.where(nx < -1e-12, bound, -np.inf).max(axis=0)
    first = np.clip(np.ceil(lower - 1e-9), 0, mask.shape[1]).astype(np.int64)
    last = np.clip(np.floor(upper + 1e-9), -1, mask.shape[1] - 1).astype(np.int64)
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
    keep = np.ones(len(order), dtype=bool)
    for i in np.nonzero(maybe.any(axis=1))[0]:
        if not keep[i]:
            continue
        others = np.nonzero(maybe[i] & keep)[0]
        if len(others) == 0:
            continue
        inter = np.bitwise_count(flat[others] & flat[i]).sum(axis=1, dtype=np.float64)
        iou = inter / (area[others] + area[i] - inter)
        keep[others[iou > max_iou]] = False
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
