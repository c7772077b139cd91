"""A mask drawn over its image: semi-transparent fill plus a solid contour, one colour per class."""

from __future__ import annotations

import numpy as np

CLASS_COLOURS = np.array(
    [[0, 0, 0], [0, 220, 90], [255, 170, 0], [60, 140, 255], [230, 60, 200], [240, 240, 40]],
    dtype=np.float32,
)


def _edges(region: np.ndarray) -> np.ndarray:
    """Pixels of ``region`` with a 4-neighbour outside it."""
    padded = np.pad(region, 1, mode="constant", constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    edges: np.ndarray = region & ~inner
    return edges


def render_overlay(rgb: np.ndarray, mask: np.ndarray, *, opacity: float = 0.4) -> np.ndarray:
    """rgb: H x W x 3 uint8; mask: H x W class indices (0 = background) -> H x W x 3 uint8."""
    if rgb.shape[:2] != mask.shape:
        raise ValueError(f"image {rgb.shape[:2]} and mask {mask.shape} differ in size")
    out = rgb.astype(np.float32)
    for value in np.unique(mask):
        if value == 0:
            continue
        colour = CLASS_COLOURS[1 + (int(value) - 1) % (len(CLASS_COLOURS) - 1)]
        region = mask == value
        out[region] = (1.0 - opacity) * out[region] + opacity * colour
        out[_edges(region)] = colour
    return np.clip(out, 0, 255).astype(np.uint8)
