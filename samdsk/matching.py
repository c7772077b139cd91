"""Matching region proposals against a probability map under image-level knowledge.

For one image and one class with probability map P (HxW in [0, 1]) the annotation is the union
U_T of a set T of proposals that maximises the soft Dice

    D(T) = 2 * sum(P * U_T) / (sum(P) + |U_T|)

subject to min_regions <= |T| <= max_regions, each region's area within [min_area, max_area]
and pairwise IoU(m_i, m_j) <= max_pair_iou (proposals of one annotation are distinct regions,
not re-segmentations of one region). D(T) is the annotation's match score.

Steps and decisions:

1. Candidates: non-empty proposals within the area bounds whose relevance mean(P inside m)
   reaches ``min_relevance``. Default 0.25: a region of relevance r < 0.25 scores at most
   2r / (1 + r) = 0.4 alone, and adding a disjoint region raises D only when r > D / 2, so
   it could only join annotations scoring about 0.5 or less, far below any useful selection
   threshold; dropping it keeps such regions out of the top candidates.
2. The ``max_candidates`` best candidates by individual soft Dice (ties: lower index first).
3. Exact solver (when max_regions <= 3 and at most ``MAX_EXACT_SUBSETS`` subsets): every subset
   is scored from per-candidate sums (|m_i|, sum(P m_i)) and pairwise intersections
   (|m_i & m_j|, sum(P m_i m_j): the products M @ M.T and (M * P) @ M.T of the K x HW mask
   matrix, taken over each mask's own pixels) by inclusion-exclusion, all in float64.
   Triples add the triple-intersection term, computed only for triples that pass the IoU test
   and whose three pairwise intersections are all non-zero, so scores are exact, not bounds.
4. Greedy solver (otherwise): from a start candidate, repeatedly add the compatible candidate
   that most raises D (computed exactly against the current union) until max_regions or no
   gain (below min_regions, even without gain). It starts from each of the ``GREEDY_STARTS``
   best candidates and keeps the best set: from the best single only, it fails whenever that
   is a merged region (one proposal over two lesions) compatible with no other region.
5. No feasible non-empty set and min_regions >= 1: an empty annotation with score 0.
6. min_regions == 0: the empty annotation competes (winning only if strictly better) with
   S(empty) = eps / (sum(P^2) + eps), eps = max(min_area, 0.001) * H * W pixels (the smallest
   region that counts). For a binary P it is the smoothed soft Dice eps / (sum(P) + eps):
   near 1 when P holds far less than one minimal region of mass, <= 0.5 with a region's worth.
   Squaring weighs each pixel by its own confidence, so a faint haze is no lesion: P = 0.01
   everywhere holds ten minimal regions of mass at min_area 0.001 and would score 0.09 with
   sum(P); it scores 0.91. A doubtful blob (P ~ 0.5 over a region) still scores low.

``Match.solver`` names the solver that built the annotation, or ``"empty"`` when it holds no
region (the score tells a confident "absent" from a failed match). For several classes, each
class is matched on its own and pixels claimed by two classes go to the one with the higher
probability; the annotation scores as its worst class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from typing import Literal

import numpy as np

from samdsk.errors import ConfigError, ShapeError
from samdsk.knowledge import ClassKnowledge
from samdsk.types import Proposals

DEFAULT_MIN_RELEVANCE = 0.25
MAX_EXACT_SUBSETS = 250_000
GREEDY_STARTS = 20
SolverName = Literal["exact", "greedy", "empty"]
SolverChoice = Literal["auto", "exact", "greedy"]


@dataclass(frozen=True)
class Match:
    """One class's constructed annotation for one image.

    mask: H x W bool, the union U_T of the chosen proposals.
    score: match score in [0, 1] (soft Dice D(T), or S(empty) for an empty annotation).
    chosen: indices into the Proposals given, ascending.
    solver: "exact", "greedy", or "empty" when no region was chosen.
    """

    mask: np.ndarray
    score: float
    chosen: tuple[int, ...]
    solver: SolverName


@dataclass(frozen=True)
class MultiClassMatch:
    """An image's annotation over C classes.

    class_mask: H x W uint8, 0 = background, c = class c (1-based, order of the knowledge).
    per_class: one Match per class, before overlaps between classes were resolved.
    score: the minimum of the per-class scores (a label is only as good as its worst class).
    """

    class_mask: np.ndarray
    per_class: tuple[Match, ...]
    score: float


@dataclass(frozen=True)
class _Candidates:
    """K candidates with exact sums, all float64 over the flattened image.

    index: K indices into the proposals; by_pixel: HW x K bool (pixel-major, so gathering a
    mask's pixels reads contiguous rows); pixels: K sorted flat index arrays;
    inter, pinter: K x K |m_i & m_j| and sum(P m_i m_j); area, mass: their diagonals;
    compatible: K x K bool, IoU <= max_pair_iou and i != j; p: HW; total: sum(P).
    """

    index: np.ndarray
    by_pixel: np.ndarray
    pixels: tuple[np.ndarray, ...]
    p: np.ndarray
    total: float
    inter: np.ndarray
    pinter: np.ndarray
    compatible: np.ndarray
    area: np.ndarray
    mass: np.ndarray

    def dice(self, mass: np.ndarray | float, area: np.ndarray | float) -> np.ndarray:
        return np.asarray(2.0 * np.asarray(mass) / (self.total + np.asarray(area)))


def match_proposals(
    proposals: Proposals,
    probability: np.ndarray,
    knowledge: ClassKnowledge,
    *,
    max_candidates: int = 20,
    max_pair_iou: float = 0.1,
    min_relevance: float = DEFAULT_MIN_RELEVANCE,
    solver: SolverChoice = "auto",
) -> Match:
    """Build the best annotation of one class from proposals (see the module docstring).

    probability: H x W float array in [0, 1], the same H x W as the proposals.
    solver: "auto" (exact where feasible, else greedy), or force "exact" / "greedy";
        "exact" raises ConfigError when sets of more than 3 regions are possible.
    """
    _check_options(max_candidates, max_pair_iou, min_relevance, solver)
    p = _check_probability(probability, (proposals.height, proposals.width))
    cands = _select_candidates(proposals, p, knowledge, max_candidates, min_relevance, max_pair_iou)
    lo = max(knowledge.min_regions, 1)
    hi = min(knowledge.max_regions, len(cands.index))
    n_subsets = sum(math.comb(len(cands.index), size) for size in range(lo, hi + 1))
    use_exact = solver == "exact" or (
        solver == "auto" and hi <= 3 and n_subsets <= MAX_EXACT_SUBSETS
    )
    if use_exact and hi > 3:
        raise ConfigError(f"the exact solver handles at most 3 regions; {hi} are possible")
    best = _solve_exact(cands, lo, hi) if use_exact else _solve_greedy(cands, lo, hi)
    empty = empty_score(probability, knowledge) if knowledge.min_regions == 0 else 0.0
    if best is None or (knowledge.min_regions == 0 and empty > best[0]):
        return Match(np.zeros(probability.shape, dtype=np.bool_), empty, (), "empty")
    chosen = tuple(sorted(int(cands.index[i]) for i in best[1]))
    mask = np.any(proposals.masks[list(chosen)], axis=0)
    return Match(mask, min(max(best[0], 0.0), 1.0), chosen, "exact" if use_exact else "greedy")


def empty_score(probability: np.ndarray, knowledge: ClassKnowledge) -> float:
    """S(empty) = eps / (sum(P^2) + eps), eps = max(min_area, 0.001) * H * W; in (0, 1]."""
    p = _check_probability(probability, None)
    eps = max(knowledge.min_area, 0.001) * p.size
    return float(eps / (float(np.dot(p, p)) + eps))


def match_classes(
    proposals: Proposals,
    probabilities: np.ndarray,
    knowledge: Sequence[ClassKnowledge],
    *,
    max_candidates: int = 20,
    max_pair_iou: float = 0.1,
    min_relevance: float = DEFAULT_MIN_RELEVANCE,
    solver: SolverChoice = "auto",
) -> MultiClassMatch:
    """Match each of C classes on its own; overlaps go to the class with the higher probability.

    probabilities: C x H x W float in [0, 1] (class c + 1 is row c); knowledge: C entries.
    Ties in probability go to the lower class number.
    """
    if not isinstance(probabilities, np.ndarray) or probabilities.ndim != 3:
        raise ShapeError("probabilities must be a C x H x W array")
    if not 1 <= probabilities.shape[0] == len(knowledge) <= 255:  # 255: uint8 class mask
        raise ShapeError(
            f"need one knowledge entry per class and 1..255 classes; got "
            f"{probabilities.shape[0]} probability maps and {len(knowledge)} entries"
        )
    per_class = tuple(
        match_proposals(
            proposals,
            probabilities[c],
            knowledge[c],
            max_candidates=max_candidates,
            max_pair_iou=max_pair_iou,
            min_relevance=min_relevance,
            solver=solver,
        )
        for c in range(len(knowledge))
    )
    claimed = np.stack([m.mask for m in per_class])
    strength = np.where(claimed, probabilities, -1.0)
    winner = np.argmax(strength, axis=0).astype(np.uint8) + 1
    class_mask = np.where(claimed.any(axis=0), winner, 0).astype(np.uint8)
    return MultiClassMatch(class_mask, per_class, min(m.score for m in per_class))


def rank_matches(scores: Sequence[float]) -> list[int]:
    """Indices of ``scores`` by descending score; equal scores keep their order."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(values)):
        raise ShapeError("match scores must be finite")
    return [int(i) for i in np.argsort(-values, kind="stable")]


def select_for_labeling(scores: Sequence[float], threshold: float = 0.9) -> list[int]:
    """Ranked indices (as ``rank_matches``) of the scores >= threshold, threshold in [0, 1]."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be in [0, 1]; got {threshold}")
    return [i for i in rank_matches(scores) if scores[i] >= threshold]


def _check_options(
    max_candidates: int, max_pair_iou: float, min_relevance: float, solver: str
) -> None:
    integer = isinstance(max_candidates, int) and not isinstance(max_candidates, bool)
    if not integer or max_candidates < 1:
        raise ConfigError(f"max_candidates must be a positive integer; got {max_candidates!r}")
    for name, value in (("max_pair_iou", max_pair_iou), ("min_relevance", min_relevance)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1]; got {value}")
    if solver not in ("auto", "exact", "greedy"):
        raise ConfigError(f"unknown solver {solver!r}; valid: ['auto', 'exact', 'greedy']")


def _check_probability(probability: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    """Validate an H x W float map in [0, 1] (of ``shape`` if given); return it flat float64."""
    if not isinstance(probability, np.ndarray) or probability.ndim != 2:
        raise ShapeError("probability must be an H x W array")
    if shape is not None and probability.shape != shape:
        raise ShapeError(f"probability is {probability.shape} but the proposals are {shape}")
    if not np.issubdtype(probability.dtype, np.floating):
        raise ShapeError(f"probability must be a float array; got {probability.dtype}")
    p = probability.reshape(-1).astype(np.float64)
    if not np.all(np.isfinite(p)) or (p.size and (p.min() < 0.0 or p.max() > 1.0)):
        raise ShapeError("probability values must be finite and within [0, 1]")
    return p


def _select_candidates(
    proposals: Proposals,
    p: np.ndarray,
    knowledge: ClassKnowledge,
    max_candidates: int,
    min_relevance: float,
    max_pair_iou: float,
) -> _Candidates:
    """Steps 1-2: filter, keep the best by soft Dice, and precompute their exact sums."""
    flat = proposals.masks.reshape(len(proposals), p.size)
    total = float(p.sum())
    kept: list[tuple[int, np.ndarray]] = []
    dice: list[float] = []
    for i, row in enumerate(flat):
        px = np.flatnonzero(row)
        if px.size == 0 or not knowledge.min_area <= px.size / p.size <= knowledge.max_area:
            continue
        mass = float(p[px].sum())
        if mass / px.size >= min_relevance:
            kept.append((i, px))
            dice.append(2.0 * mass / (total + px.size))
    order = np.argsort(-np.asarray(dice, dtype=np.float64), kind="stable")[:max_candidates]
    index = np.array([kept[j][0] for j in order], dtype=np.intp)
    pixels = tuple(kept[j][1] for j in order)
    by_pixel = np.ascontiguousarray(flat[index].T)
    inter, pinter = _intersections(by_pixel, pixels, p)
    area = np.diagonal(inter)
    compatible = inter / (area[:, None] + area[None, :] - inter) <= max_pair_iou  # union > 0
    np.fill_diagonal(compatible, False)
    masses = np.diagonal(pinter)
    return _Candidates(index, by_pixel, pixels, p, total, inter, pinter, compatible, area, masses)


def _intersections(
    by_pixel: np.ndarray, pixels: tuple[np.ndarray, ...], p: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The products M.T @ M and M.T @ (P * M) of the HW x K candidate matrix M, row i taken
    over m_i's own pixels only: masks cover a few percent of an image, so this sparse product
    is exact in float64 and about ten times faster than the dense one."""
    k = len(pixels)
    inter = np.zeros((k, k), dtype=np.float64)
    pinter = np.zeros((k, k), dtype=np.float64)
    for i, rows in enumerate(pixels):  # the upper triangle, mirrored below
        inter[i, i:], pinter[i, i:] = _column_sums(by_pixel[rows, i:], p[rows])
    return inter + np.triu(inter, 1).T, pinter + np.triu(pinter, 1).T


def _column_sums(sub: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each column of an n x m bool matrix: its count of True and the sum of the n weights
    over them. einsum casts in small buffers and stays off BLAS, whose threads make these
    small products erratic on a busy machine."""
    counts = sub.view(np.uint8).sum(axis=0, dtype=np.int64).astype(np.float64)
    return counts, np.asarray(np.einsum("i,ij->j", weights, sub), dtype=np.float64)


def _solve_exact(c: _Candidates, lo: int, hi: int) -> tuple[float, tuple[int, ...]] | None:
    """The best feasible subset of size lo..hi (hi <= 3); on ties the fewest regions, then the
    candidates with the best individual soft Dice."""
    best: tuple[float, tuple[int, ...]] | None = None
    for size in range(lo, hi + 1):
        subsets = _subsets(len(c.index), size)
        scores = _subset_scores(c, subsets)
        top = int(np.argmax(scores)) if scores.size else -1
        if top >= 0 and np.isfinite(scores[top]) and (best is None or scores[top] > best[0]):
            best = (float(scores[top]), tuple(int(i) for i in subsets[top]))
    return best


@lru_cache(maxsize=64)
def _subsets(k: int, size: int) -> np.ndarray:
    """All size-subsets of range(k) as an S x size intp array, lexicographic (read-only)."""
    subsets = np.array(list(combinations(range(k), size)), dtype=np.intp).reshape(-1, size)
    subsets.setflags(write=False)
    return subsets


def _subset_scores(c: _Candidates, subsets: np.ndarray) -> np.ndarray:
    """Exact D of each row of an S x size (size <= 3) index array by inclusion-exclusion;
    -inf where a pair fails the IoU test."""
    area = c.area[subsets].sum(axis=1)
    mass = c.mass[subsets].sum(axis=1)
    ok = np.ones(len(subsets), dtype=np.bool_)
    touching = np.ones(len(subsets), dtype=np.bool_)
    for a, b in combinations(range(subsets.shape[1]), 2):
        i, j = subsets[:, a], subsets[:, b]
        ok &= c.compatible[i, j]
        touching &= c.inter[i, j] > 0
        area -= c.inter[i, j]
        mass -= c.pinter[i, j]
    if subsets.shape[1] == 3:
        need = np.flatnonzero(ok & touching)  # the triple term is zero unless all pairs meet
        add_area, add_mass = _triple_terms(c, subsets[need])
        area[need] += add_area
        mass[need] += add_mass
    return np.where(ok, c.dice(mass, area), -np.inf)


def _triple_terms(c: _Candidates, triples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|m_x & m_y & m_z| and sum(P m_x m_y m_z) of each row of an R x 3 array, counted over
    the pixels of the smallest mask x, all triples sharing x at once."""
    order = np.argsort(c.area[triples], axis=1, kind="stable")
    triples = np.take_along_axis(triples, order, axis=1)
    area = np.zeros(len(triples), dtype=np.float64)
    mass = np.zeros(len(triples), dtype=np.float64)
    for x in np.unique(triples[:, 0]):
        sel = np.flatnonzero(triples[:, 0] == x)
        sub = c.by_pixel[c.pixels[x]]
        both = sub[:, triples[sel, 1]] & sub[:, triples[sel, 2]]
        area[sel], mass[sel] = _column_sums(both, c.p[c.pixels[x]])
    return area, mass


def _solve_greedy(c: _Candidates, lo: int, hi: int) -> tuple[float, tuple[int, ...]] | None:
    """The best of the greedy sets grown from each of the GREEDY_STARTS best candidates."""
    best: tuple[float, tuple[int, ...]] | None = None
    for first in range(min(len(c.index), GREEDY_STARTS) if hi >= lo else 0):
        found = _grow(c, first, lo, hi)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return best


def _grow(c: _Candidates, first: int, lo: int, hi: int) -> tuple[float, tuple[int, ...]] | None:
    """Add the compatible candidate with the largest exact gain in D until no gain or hi."""
    chosen = [first]
    union = c.pixels[first]
    allowed = c.compatible[first].copy()
    score = float(c.dice(c.mass[first], c.area[first]))
    while len(chosen) < hi and allowed.any():
        # Every candidate's overlap with the current union, over the union's pixels.
        overlap, pshared = _column_sums(c.by_pixel[union], c.p[union])
        cand = np.flatnonzero(allowed)
        u_area, u_mass = float(union.size), float(c.p[union].sum())
        scores = c.dice(
            u_mass + c.mass[cand] - pshared[cand], u_area + c.area[cand] - overlap[cand]
        )
        top = int(np.argmax(scores))
        if scores[top] <= score and len(chosen) >= lo:
            break
        chosen.append(int(cand[top]))
        union = np.union1d(union, c.pixels[chosen[-1]])
        score = float(scores[top])
        allowed &= c.compatible[chosen[-1]]
    return (score, tuple(chosen)) if len(chosen) >= lo else None
