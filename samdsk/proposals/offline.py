"""Region proposals without SAM: classical segmentation, for when no SAM checkpoint is set.

Pipeline on the image scaled to ``work_size`` pixels on its long side:

1. suppress specular highlights, blur lightly, convert to CIELAB;
2. candidates (``samdsk.proposals.regions``): graph-based segments and SLIC superpixels merged
   bottom-up under colour, boundary and mixed criteria, flat graph-based segmentations at
   coarse scales, and components of multi-Otsu thresholds;
3. drop regions under ``min_area`` or over ``max_area`` of the image; score each region by
   its outline contrast (mean CIELAB distance across the outline) times sqrt(area fraction);
   the size factor keeps speckle-sized high-contrast regions (text, glare, vessels) from
   crowding out lesion-sized ones when the list is cut;
4. keep the ``hull_sources`` best distinct regions, fill their holes and add each one's convex
   hull (lesions are mostly convex, while merging often leaves bites along weak edges);
5. de-duplicate at IoU > ``max_iou`` (the higher score stays), keep the ``max_proposals`` best
   and scale the masks back to the image size.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

from samdsk.errors import ConfigError, ShapeError
from samdsk.proposals.hierarchy import MergeCriterion
from samdsk.proposals.masks import (
    boundary_contrast,
    convex_hull,
    dedupe,
    edge_strengths,
    fill_holes,
    resize_masks,
)
from samdsk.proposals.regions import (
    Family,
    graph_segments,
    hierarchy_family,
    segment_family,
    smooth,
    superpixels,
    suppress_highlights,
    threshold_families,
)
from samdsk.types import Proposals

ALGORITHM_VERSION = 1  # bump when the output changes for equal settings: it keys the cache
CRITERIA = (MergeCriterion.COLOUR, MergeCriterion.BOUNDARY, MergeCriterion.MIXED)


@dataclass(frozen=True)
class OfflineProposalSource:
    """Classical region proposals; ``propose`` is deterministic for equal settings.

    work_size: long side (pixels) the image is scaled to before segmentation.
    max_proposals: most proposals returned; min_area, max_area: area bounds as fractions of
    the image; max_iou: proposals overlapping a better one by more are dropped.
    """

    name: ClassVar[str] = "offline"

    work_size: int = 256
    max_proposals: int = 300
    min_area: float = 0.001
    max_area: float = 0.95
    max_iou: float = 0.9
    candidate_pool: int = 800
    hull_sources: int = 200
    blur_sigma: float = 1.0
    graph_scale: float = 50.0
    superpixel_count: int = 300
    coarse_scales: tuple[float, ...] = (300.0, 1000.0)
    size_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.work_size < 32 or self.max_proposals < 1 or self.hull_sources < 0:
            raise ConfigError("work_size must be >= 32, max_proposals >= 1, hull_sources >= 0")
        if not 0.0 <= self.min_area < self.max_area <= 1.0:
            raise ConfigError("need 0 <= min_area < max_area <= 1 (fractions of the image)")
        if not 0.0 < self.max_iou <= 1.0:
            raise ConfigError(f"max_iou must be in (0, 1]; got {self.max_iou}")

    def settings_key(self) -> str:
        """Every setting that changes the output, as a stable JSON string."""
        return json.dumps({"version": ALGORITHM_VERSION, **asdict(self)}, sort_keys=True)

    def describe(self) -> str:
        return "offline classical proposals (NO SAM checkpoint configured)"

    def propose(self, image: np.ndarray) -> Proposals:
        """Proposals for an H x W x 3 uint8 RGB image: N x H x W bool masks, N float32 scores
        (outline contrast x sqrt(area fraction), higher = better), best first."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ShapeError(
                f"expected an H x W x 3 uint8 RGB image; got {image.dtype} {image.shape}"
            )
        height, width = image.shape[:2]
        small = _downscale(image, self.work_size)
        masks, scores = self._regions(small)
        if len(masks) == 0:
            return Proposals.empty(height, width, self.name)
        masks = resize_masks(masks, height, width)
        return Proposals(masks=masks, scores=scores.astype(np.float32), source=self.name)

    def _regions(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prepared = smooth(suppress_highlights(image), self.blur_sigma)
        lab = rgb2lab(prepared).astype(np.float32)
        edges = edge_strengths(lab)
        masks, scores = self._pool(_families(self, prepared, lab, edges))
        sources = masks[dedupe(masks, scores, self.max_iou)[: self.hull_sources]]
        if len(sources) == 0:
            return sources, np.zeros(0, dtype=np.float64)
        filled = np.stack([fill_holes(mask) for mask in sources])
        masks = np.concatenate([filled, np.stack([convex_hull(mask) for mask in filled])])
        area = np.count_nonzero(masks.reshape(len(masks), -1), axis=1) / masks[0].size
        masks, area = masks[area <= self.max_area], area[area <= self.max_area]
        scores = boundary_contrast(masks, *edges) * np.sqrt(area)
        keep = dedupe(masks, scores, self.max_iou)[: self.max_proposals]
        return masks[keep], scores[keep]

    def _pool(self, families: list[Family]) -> tuple[np.ndarray, np.ndarray]:
        """Masks and scores of the ``candidate_pool`` best-scored candidates within the area
        bounds, over all families; score = outline contrast x sqrt(area fraction)."""
        scores = np.concatenate([f.contrast * np.sqrt(f.area) for f in families])
        area = np.concatenate([f.area for f in families])
        which = np.concatenate([np.full(len(f.area), i) for i, f in enumerate(families)])
        row = np.concatenate([np.arange(len(f.area)) for f in families])
        inside = np.nonzero((area >= self.min_area) & (area <= self.max_area))[0]
        best = inside[np.argsort(-scores[inside], kind="stable")[: self.candidate_pool]]
        best = best[np.lexsort((row[best], which[best]))]  # group by family for building masks
        masks = [families[i].masks(row[best[which[best] == i]]) for i in np.unique(which[best])]
        if not masks:
            return np.zeros((0, *families[0].labels.shape), dtype=bool), np.zeros(0)
        return np.concatenate(masks), scores[best]


def _families(
    settings: OfflineProposalSource,
    image: np.ndarray,
    lab: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray],
) -> list[Family]:
    """Every candidate family on the prepared work image."""
    min_pixels = int(np.ceil(settings.min_area * image.shape[0] * image.shape[1]))
    weight = settings.size_weight
    fine = graph_segments(image, settings.graph_scale, 0.0005)
    families = [
        hierarchy_family(fine, lab, edges, CRITERIA, weight),
        hierarchy_family(
            superpixels(image, settings.superpixel_count), lab, edges, CRITERIA, weight
        ),
    ]
    families += [
        segment_family(graph_segments(image, scale, min_fraction=0.001), edges)
        for scale in settings.coarse_scales
    ]
    return families + threshold_families(image, lab, min_pixels, edges)


def _downscale(image: np.ndarray, long_side: int) -> np.ndarray:
    """Area-averaged downscale so the long side is at most ``long_side`` (never enlarged)."""
    height, width = image.shape[:2]
    factor = long_side / max(height, width)
    if factor >= 1.0:
        return image
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
