"""Matching proposals to probability maps: unit, property and real-data tests."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from samdsk.errors import ConfigError, ShapeError
from samdsk.knowledge import PRESETS, ClassKnowledge
from samdsk.matching import (
    Match,
    empty_score,
    match_classes,
    match_proposals,
    rank_matches,
    select_for_labeling,
)
from samdsk.types import Proposals

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.asarray((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r)


def make(masks: list[np.ndarray]) -> Proposals:
    return Proposals(np.stack(masks), np.ones(len(masks), dtype=np.float32), "test")


def soft_dice_of(mask: np.ndarray, p: np.ndarray) -> float:
    p64 = p.astype(np.float64)
    return float(2.0 * p64[mask].sum() / (p64.sum() + mask.sum()))


def pair_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# ---------------------------------------------------------------- Proposals


def test_proposals_validate_their_arrays() -> None:
    masks = np.zeros((2, 4, 5), dtype=np.bool_)
    props = Proposals(masks, np.zeros(2, dtype=np.float32), "sam")
    assert (len(props), props.height, props.width) == (2, 4, 5)
    with pytest.raises(ShapeError, match="bool"):
        Proposals(masks.astype(np.uint8), np.zeros(2, dtype=np.float32), "sam")
    with pytest.raises(ShapeError, match="float32"):
        Proposals(masks, np.zeros(2), "sam")
    with pytest.raises(ShapeError, match="one score per mask"):
        Proposals(masks, np.zeros(3, dtype=np.float32), "sam")
    with pytest.raises(ShapeError, match="finite"):
        Proposals(masks, np.array([0.0, np.nan], dtype=np.float32), "sam")
    with pytest.raises(ShapeError, match="source"):
        Proposals(masks, np.zeros(2, dtype=np.float32), "")


def test_empty_proposals_match_to_nothing() -> None:
    props = Proposals.empty(6, 7, "slic")
    assert (len(props), props.height, props.width, props.source) == (0, 6, 7, "slic")
    match = match_proposals(props, np.ones((6, 7)), ClassKnowledge())
    assert (match.score, match.chosen, match.solver) == (0.0, (), "empty")
    assert match.mask.shape == (6, 7) and not match.mask.any()
    with pytest.raises(ShapeError):
        Proposals.empty(0, 7, "slic")


# ---------------------------------------------------------------- unit tests


def test_two_disjoint_discs_are_found_among_distractors() -> None:
    shape = (48, 48)
    a, b = disc(shape, 12, 12, 7), disc(shape, 34, 32, 9)
    p = (a | b).astype(np.float32)
    box = np.zeros(shape, dtype=np.bool_)
    box[:10, 36:] = True
    partial = a & (np.arange(48)[None, :] < 12)
    masks = [box, partial, b | disc(shape, 34, 32, 11), a, a | b | box, b]
    for solver in ("exact", "greedy"):
        match = match_proposals(make(masks), p, ClassKnowledge(1, 3), solver=solver)
        assert match.chosen == (3, 5)
        assert match.score == pytest.approx(1.0)
        assert match.solver == solver
        np.testing.assert_array_equal(match.mask, a | b)


def test_auto_solver_is_exact_up_to_three_regions_and_greedy_beyond() -> None:
    shape = (40, 40)
    discs = [disc(shape, 8 + 12 * (i // 3), 8 + 12 * (i % 3), 4) for i in range(6)]
    p = np.any(np.stack(discs[:5]), axis=0).astype(np.float32)
    assert match_proposals(make(discs), p, ClassKnowledge(1, 3)).solver == "exact"
    # Without the relevance filter the sixth disc is a candidate; adding it would lower D.
    greedy = match_proposals(make(discs), p, ClassKnowledge(1, 6), min_relevance=0.0)
    assert greedy.solver == "greedy"
    assert greedy.chosen == (0, 1, 2, 3, 4) and greedy.score == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="at most 3"):
        match_proposals(make(discs), p, ClassKnowledge(1, 6), solver="exact")


def test_candidate_filter_applies_area_and_relevance() -> None:
    shape = (20, 20)
    small, big = disc(shape, 5, 5, 2), disc(shape, 12, 12, 6)
    p = (small | big).astype(np.float32) * 0.9
    knowledge = ClassKnowledge(1, 2, min_area=0.05, max_area=0.5)
    match = match_proposals(make([small, big]), p, knowledge)
    assert match.chosen == (1,)  # the small disc is under 5% of the image
    faint = np.full(shape, 0.2, dtype=np.float32)
    assert match_proposals(make([big]), faint, ClassKnowledge()).solver == "empty"
    relaxed = match_proposals(make([big]), faint, ClassKnowledge(), min_relevance=0.1)
    assert relaxed.chosen == (0,)


def test_max_candidates_keeps_the_best_individual_matches() -> None:
    shape = (30, 30)
    target = disc(shape, 15, 15, 8)
    weaker = [disc(shape, 15, 15, r) for r in (5, 6, 7)]
    p = target.astype(np.float32)
    match = match_proposals(make([*weaker, target]), p, ClassKnowledge(), max_candidates=1)
    assert match.chosen == (3,)


def test_overlapping_proposals_respect_the_pair_iou_threshold() -> None:
    shape = (24, 24)
    left = np.zeros(shape, dtype=np.bool_)
    left[4:20, 2:14] = True
    right = np.zeros(shape, dtype=np.bool_)
    right[4:20, 10:22] = True
    p = (left | right).astype(np.float32)
    strict = match_proposals(make([left, right]), p, ClassKnowledge(1, 2))
    assert len(strict.chosen) == 1
    loose = match_proposals(make([left, right]), p, ClassKnowledge(1, 2), max_pair_iou=0.5)
    assert loose.chosen == (0, 1) and loose.score == pytest.approx(1.0)


def test_infeasible_minimum_gives_an_empty_match() -> None:
    shape = (16, 16)
    p = disc(shape, 8, 8, 4).astype(np.float32)
    match = match_proposals(make([disc(shape, 8, 8, 4)]), p, ClassKnowledge(2, 3))
    assert match == Match(match.mask, 0.0, (), "empty") and not match.mask.any()


@pytest.mark.parametrize(
    ("probability", "message"),
    [
        (np.zeros((5, 6)), "proposals are"),
        (np.zeros((6, 6), dtype=np.uint8), "float"),
        (np.full((6, 6), 1.5), "within"),
        (np.full((6, 6), np.nan), "finite"),
        (np.zeros((1, 6, 6)), "H x W"),
    ],
)
def test_probability_contract_is_enforced(probability: np.ndarray, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        match_proposals(Proposals.empty(6, 6, "t"), probability, ClassKnowledge())


@pytest.mark.parametrize(
    "options",
    [
        {"max_candidates": 0},
        {"max_pair_iou": 1.5},
        {"min_relevance": -0.1},
        {"solver": "fast"},
    ],
)
def test_invalid_options_raise_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        match_proposals(Proposals.empty(4, 4, "t"), np.zeros((4, 4)), ClassKnowledge(), **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- empty annotation


def test_confident_nothing_scores_high_and_stays_empty() -> None:
    shape = (64, 64)
    p = np.full(shape, 0.01, dtype=np.float32)
    props = make([disc(shape, 20, 20, 6), disc(shape, 40, 40, 8)])
    match = match_proposals(props, p, ClassKnowledge(0, 2, min_area=0.001))
    assert match.solver == "empty" and match.chosen == () and not match.mask.any()
    assert match.score > 0.9


def test_doubtful_blob_gives_a_low_empty_score() -> None:
    shape = (64, 64)
    blob = disc(shape, 30, 30, 8)  # about 5% of the image
    p = np.where(blob, 0.5, 0.0).astype(np.float32)
    knowledge = ClassKnowledge(0, 2, min_area=0.001)
    assert empty_score(p, knowledge) < 0.2
    nothing = match_proposals(Proposals.empty(*shape, "t"), p, knowledge)
    assert nothing.solver == "empty" and nothing.score < 0.2
    # With the blob proposed, the blob beats the empty annotation but scores only ~2/3.
    match = match_proposals(make([blob]), p, knowledge)
    assert match.chosen == (0,) and match.score == pytest.approx(2 / 3, abs=1e-6)


def test_empty_score_of_one_minimal_region_is_one_half() -> None:
    p = np.zeros((100, 100))
    p[:10, :10] = 1.0  # 1% of the image = min_area
    assert empty_score(p, ClassKnowledge(0, 1, min_area=0.01)) == pytest.approx(0.5)
    assert empty_score(np.zeros((10, 10)), ClassKnowledge(0, 1)) == 1.0


# ---------------------------------------------------------------- several classes


def test_classes_overlap_goes_to_the_higher_probability() -> None:
    shape = (8, 16)
    left = np.zeros(shape, dtype=np.bool_)
    left[:, :10] = True
    right = np.zeros(shape, dtype=np.bool_)
    right[:, 6:] = True
    p1 = np.where(left, 0.9, 0.0)
    for overlap_p2, owner in ((0.7, 1), (0.95, 2)):
        p2 = np.where(right, 0.9, 0.0)
        p2[:, 6:10] = overlap_p2
        result = match_classes(
            make([left, right]), np.stack([p1, p2]), [ClassKnowledge(), ClassKnowledge()]
        )
        assert [m.chosen for m in result.per_class] == [(0,), (1,)]
        assert result.class_mask.dtype == np.uint8
        assert (result.class_mask[:, :6] == 1).all() and (result.class_mask[:, 10:] == 2).all()
        assert (result.class_mask[:, 6:10] == owner).all()
        assert result.score == min(m.score for m in result.per_class)


def test_match_classes_checks_class_counts() -> None:
    props = Proposals.empty(4, 4, "t")
    with pytest.raises(ShapeError, match="one knowledge entry per class"):
        match_classes(props, np.zeros((2, 4, 4)), [ClassKnowledge()])
    with pytest.raises(ShapeError, match="C x H x W"):
        match_classes(props, np.zeros((4, 4)), [ClassKnowledge()])


# ---------------------------------------------------------------- ranking


def test_rank_and_select() -> None:
    scores = [0.5, 0.95, 0.91, 0.95, 0.2]
    assert rank_matches(scores) == [1, 3, 2, 0, 4]
    assert select_for_labeling(scores) == [1, 3, 2]
    assert select_for_labeling(scores, threshold=0.95) == [1, 3]
    assert rank_matches([]) == [] and select_for_labeling([]) == []
    with pytest.raises(ConfigError):
        select_for_labeling(scores, threshold=1.5)
    with pytest.raises(ShapeError):
        rank_matches([0.1, float("nan")])


# ---------------------------------------------------------------- properties


@st.composite
def matching_inputs(draw: st.DrawFn) -> tuple[Proposals, np.ndarray, ClassKnowledge, float]:
    """Small images with rectangle or noise proposals (many overlaps) and varied P."""
    h, w = draw(st.integers(6, 14)), draw(st.integers(6, 14))
    n = draw(st.integers(0, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    masks = np.zeros((n, h, w), dtype=np.bool_)
    for i in range(n):
        if draw(st.booleans()):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            masks[i, y0 : rng.integers(y0 + 1, h + 1), x0 : rng.integers(x0 + 1, w + 1)] = True
        else:
            masks[i] = rng.random((h, w)) < rng.uniform(0.05, 0.6)
    kind = draw(st.sampled_from(["uniform", "binary", "from_masks"]))
    if kind == "uniform":
        p = rng.random((h, w))
    elif kind == "binary":
        p = (rng.random((h, w)) < 0.3).astype(np.float64)
    else:
        p = np.asarray(masks[: max(1, n // 2)].any(axis=0), dtype=np.float64) * rng.uniform(0.5, 1)
    lo = draw(st.integers(0, 3))
    knowledge = ClassKnowledge(
        min_regions=lo,
        max_regions=draw(st.integers(max(lo, 1), 3)),
        min_area=draw(st.sampled_from([0.0, 0.05])),
        max_area=draw(st.sampled_from([0.5, 1.0])),
    )
    iou_limit = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    return make(list(masks)) if n else Proposals.empty(h, w, "t"), p, knowledge, iou_limit


def assert_constraints(
    match: Match, props: Proposals, p: np.ndarray, k: ClassKnowledge, t: float
) -> None:
    chosen = list(match.chosen)
    if match.solver == "empty":
        assert chosen == [] and not match.mask.any()
        return
    assert k.min_regions <= len(chosen) <= k.max_regions
    np.testing.assert_array_equal(match.mask, props.masks[chosen].any(axis=0))
    for i in chosen:
        fraction = props.masks[i].mean()
        assert props.masks[i].any() and k.min_area <= fraction <= k.max_area
    for i, j in combinations(chosen, 2):
        assert pair_iou(props.masks[i], props.masks[j]) <= t
    # The reported score is the soft Dice of the actual union (exact inclusion-exclusion).
    assert match.score == pytest.approx(soft_dice_of(match.mask, p), rel=1e-9, abs=1e-12)


def brute_force_best(props: Proposals, p: np.ndarray, k: ClassKnowledge, t: float) -> float:
    """Best score over every feasible subset, with no relevance filter or candidate cap."""
    eligible = [
        i for i, m in enumerate(props.masks) if m.any() and k.min_area <= m.mean() <= k.max_area
    ]
    best = empty_score(p, k) if k.min_regions == 0 else 0.0
    for size in range(max(k.min_regions, 1), k.max_regions + 1):
        for subset in combinations(eligible, size):
            if all(
                pair_iou(props.masks[i], props.masks[j]) <= t for i, j in combinations(subset, 2)
            ):
                union = np.asarray(props.masks[list(subset)].any(axis=0))
                best = max(best, soft_dice_of(union, p))
    return best


@settings(max_examples=80, deadline=None)
@given(matching_inputs())
def test_exact_is_optimal_and_never_below_greedy(
    case: tuple[Proposals, np.ndarray, ClassKnowledge, float],
) -> None:
    props, p, k, t = case
    options = {"max_pair_iou": t, "min_relevance": 0.0, "max_candidates": 20}
    exact = match_proposals(props, p, k, solver="exact", **options)  # type: ignore[arg-type]
    greedy = match_proposals(props, p, k, solver="greedy", **options)  # type: ignore[arg-type]
    for match in (exact, greedy):
        assert_constraints(match, props, p, k, t)
    assert exact.score >= greedy.score - 1e-12
    assert exact.score == pytest.approx(brute_force_best(props, p, k, t), rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(matching_inputs(), st.sampled_from([0.0, 0.25, 0.6]), st.integers(4, 6))
def test_constraints_hold_with_filters_and_many_regions(
    case: tuple[Proposals, np.ndarray, ClassKnowledge, float], relevance: float, many: int
) -> None:
    props, p, k, t = case
    for knowledge in (k, ClassKnowledge(k.min_regions, many, k.min_area, k.max_area)):
        match = match_proposals(props, p, knowledge, max_pair_iou=t, min_relevance=relevance)
        assert_constraints(match, props, p, knowledge, t)
        for i in match.chosen:
            assert p[props.masks[i]].mean() >= relevance


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_known_optimum_of_disjoint_discs_is_found(seed: int, count: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (40, 40)
    centres = [(10, 10), (10, 30), (30, 20)][:count]
    discs = [disc(shape, cy, cx, float(rng.integers(3, 7))) for cy, cx in centres]
    distractors = [d & (rng.random(shape) < 0.7) for d in discs]  # partial discs
    distractors += [disc(shape, cy, cx, 9) for cy, cx in centres]  # over-segmentations
    distractors.append(rng.random(shape) < 0.1)  # scattered noise
    order = rng.permutation(len(discs) + len(distractors))
    masks = [[*discs, *distractors][i] for i in order]
    p = np.any(np.stack(discs), axis=0).astype(np.float32)
    match = match_proposals(make(masks), p, ClassKnowledge(1, 3))
    assert match.score == pytest.approx(1.0)
    assert sorted(match.chosen) == sorted(int(np.flatnonzero(order == i)[0]) for i in range(count))


# ---------------------------------------------------------------- real data


@pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder missing")
def test_kvasir_ground_truth_wins_against_its_variants() -> None:
    path = sorted((DATA / "kvasir_seg" / "masks").glob("*.png"))[0]
    truth = np.asarray(Image.open(path).convert("L")) > 127
    h, w = truth.shape
    box = np.zeros_like(truth)
    corners = [(slice(0, h // 5), slice(0, w // 5)), (slice(-h // 5, None), slice(-w // 5, None))]
    for rows, cols in corners:
        if not truth[rows, cols].any():
            box[rows, cols] = True
            break
    masks = [
        ndimage.binary_erosion(truth, iterations=8),
        ndimage.binary_dilation(truth, iterations=8),
        truth,
        np.roll(truth, (h // 10, w // 10), axis=(0, 1)),
        box,
    ]
    match = match_proposals(make(masks), truth.astype(np.float32), PRESETS["kvasir_seg"])
    assert match.chosen == (2,)
    assert match.score == pytest.approx(1.0)
