"""Families of candidate regions from classical segmentation, for the offline source.

Each family is a label image and K candidate regions, each a set of its segments, with the
regions' colour contrasts to their surroundings and their areas; masks are built only for the
regions that are kept. The families complement each other: graph-based segments and SLIC
superpixels merged bottom-up under three criteria (selective search), flat graph-based
segmentations at coarse scales, and connected components of multi-Otsu thresholds on
lightness, colour and saturation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse
from skimage.color import rgb2hsv
from skimage.filters import threshold_multiotsu
from skimage.segmentation import felzenszwalb, slic

from samdsk.proposals.hierarchy import MergeCriterion, adjacency, merge_regions


@dataclass(frozen=True)
class Family:
    """Candidate regions drawn as unions of the segments of one label image.

    labels: H x W int64, segments 0..N-1. regions: K x N bool, row k marks region k's
    segments. contrast: K float64, CIELAB distance between a region's mean colour and the mean
    colour of the segments around it (weighted by shared outline length): the region-level
    counterpart of ``masks.ring_contrast``. area: K float64, fraction of the image covered.
    Masks are built only on demand (``masks``): a family holds far more regions than survive.
    """

    labels: np.ndarray
    regions: np.ndarray
    contrast: np.ndarray
    area: np.ndarray

    def masks(self, rows: np.ndarray) -> np.ndarray:
        """len(rows) x H x W bool masks of the chosen regions."""
        masks: np.ndarray = self.regions[rows][:, self.labels]
        return masks


def make_family(
    labels: np.ndarray, regions: np.ndarray, lab: np.ndarray, edges: tuple[np.ndarray, np.ndarray]
) -> Family:
    """A ``Family`` with contrast and area computed on the region adjacency graph."""
    count = int(labels.max()) + 1
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=count).astype(np.float64)
    colour = (
        np.stack(
            [np.bincount(flat, weights=lab[..., c].ravel(), minlength=count) for c in range(3)], 1
        )
        / np.maximum(sizes, 1.0)[:, None]
    )
    first, second, _, shared = adjacency(labels, edges[0], edges[1])
    outline = sparse.coo_matrix((shared, (first, second)), shape=(count, count)).tocsr()
    inside = regions.astype(np.float64)
    around = np.asarray((outline + outline.T) @ inside.T).T * (1.0 - inside)
    weight = around.sum(axis=1)
    ring = (around @ colour) / np.maximum(weight, 1e-9)[:, None]
    area = inside @ sizes
    mean = ((inside * sizes) @ colour) / np.maximum(area, 1.0)[:, None]
    contrast = np.where(weight > 0, np.linalg.norm(mean - ring, axis=1), 0.0)
    return Family(labels, regions, contrast, area / labels.size)


def suppress_highlights(image: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB with specular highlights (bright, unsaturated spots, as on wet
    mucosa) replaced by the nearest other pixel, so they neither split regions nor add edges."""
    hsv = rgb2hsv(image)
    glare = (hsv[..., 2] > 0.85) & (hsv[..., 1] < 0.25)
    glare = ndi.binary_dilation(glare, iterations=2)
    if not glare.any() or glare.all():
        return image
    nearest = ndi.distance_transform_edt(glare, return_distances=False, return_indices=True)
    return np.ascontiguousarray(image[nearest[0], nearest[1]])


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an H x W x 3 uint8 image per channel (sigma in pixels), uint8 out."""
    if sigma <= 0:
        return image
    blurred: np.ndarray = ndi.gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0))
    rounded: np.ndarray = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    return rounded


def hierarchy_family(
    labels: np.ndarray,
    lab: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray],
    criteria: tuple[MergeCriterion, ...],
    size_weight: float,
) -> Family:
    """Every segment of ``labels`` (H x W int, 0..N-1) and every region of its bottom-up
    merging under each criterion, without repeats (hierarchies share many regions)."""
    count = int(labels.max()) + 1
    stacks = [np.eye(count, dtype=bool)]
    stacks += [merge_regions(labels, lab, *edges, criterion, size_weight) for criterion in criteria]
    regions = np.concatenate(stacks)
    packed = np.packbits(regions, axis=1)
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    regions = regions[np.sort(np.unique(rows, return_index=True)[1])]
    return make_family(labels, regions, lab, edges)


def segment_family(
    labels: np.ndarray, lab: np.ndarray, edges: tuple[np.ndarray, np.ndarray]
) -> Family:
    """Each segment of an H x W int label image (0..N-1) as one candidate."""
    return make_family(labels, np.eye(int(labels.max()) + 1, dtype=bool), lab, edges)


def graph_segments(image: np.ndarray, scale: float, min_fraction: float) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segmentation of an H x W x 3 uint8 image: H x W int64 labels
    0..N-1. ``scale`` sets the preferred segment size; segments below ``min_fraction`` of the
    image are merged into a neighbour."""
    min_size = max(16, int(min_fraction * image.shape[0] * image.shape[1]))
    labels = felzenszwalb(image, scale=scale, sigma=0.5, min_size=min_size)
    return _consecutive(labels)


def superpixels(image: np.ndarray, count: int) -> np.ndarray:
    """SLIC superpixels (CIELAB, compactness 10) of an H x W x 3 uint8 image: H x W int64
    labels 0..N-1, N close to ``count``."""
    labels = slic(image, n_segments=count, compactness=10.0, start_label=0, convert2lab=True)
    return _consecutive(labels)


def threshold_families(
    image: np.ndarray, lab: np.ndarray, min_pixels: int, edges: tuple[np.ndarray, np.ndarray]
) -> list[Family]:
    """Connected components (of at least ``min_pixels``) of both sides of every 3-class
    multi-Otsu threshold of CIELAB L*, a*, b* and HSV saturation: bright/dark, red/green,
    yellow/blue and vivid/pale structures such as pigmented skin lesions or hypoechoic masses.
    One family per split; segment 0 is the other side, so it is never a candidate."""
    channels = [lab[..., 0], lab[..., 1], lab[..., 2], rgb2hsv(image)[..., 1]]
    families: list[Family] = []
    for channel in channels:
        if len(np.unique(channel)) < 3:  # multi-Otsu needs at least one value per class
            continue
        levels = threshold_multiotsu(channel, classes=3)  # type: ignore[no-untyped-call]
        for level in levels:
            for side in (channel > level, channel <= level):
                components, count = ndi.label(side)
                sizes = np.bincount(components.ravel(), minlength=count + 1)
                big = np.nonzero(sizes >= min_pixels)[0]
                big = big[big > 0]
                if len(big):
                    regions = np.zeros((len(big), count + 1), dtype=bool)
                    regions[np.arange(len(big)), big] = True
                    families.append(make_family(components.astype(np.int64), regions, lab, edges))
    return families


def _consecutive(labels: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int64)
