"""The fast SAM engine against segment_anything's own automatic mask generator, on a tiny
randomly initialised SAM saved as a real checkpoint: same per-prompt scores, same masks, an
embedding cache that spares the encoder, and clear errors for bad inputs and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from samdsk.errors import ConfigError, ShapeError
from samdsk.proposals import ProposalSource, build_proposal_source
from samdsk.proposals.agreement import best_ious, mask_agreement, reference_prompt_scores
from samdsk.proposals.engine_ops import (
    STABILITY_BOUND_SLACK,
    pack_masks,
    stability_score,
    stability_upper_bound,
    unpack_masks,
    upscale_logits,
)
from samdsk.proposals.sam import SamProposalSource
from samdsk.proposals.sam_fast import FastSamProposalSource
from samdsk.types import Proposals
from tests.tiny_sam import kvasir_image, save_tiny_sam

# Thresholds at which many random-weight masks survive: box NMS off (random masks are
# scattered, so their boxes all span the image and NMS at 0.5 would keep one).
PERMISSIVE = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny.pth", logit_scale=30.0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return kvasir_image(96)


def _propose_both(
    checkpoint: Path, image: np.ndarray, **settings: Any
) -> tuple[Proposals, Proposals]:
    """The reference generator's and the engine's proposals, same weights and settings."""
    common = {"checkpoint": checkpoint, "model_type": "vit_tiny", "device": "cpu", **settings}
    reference = SamProposalSource(**common).propose(image)
    return reference, FastSamProposalSource(**common).propose(image)


def test_prefilter_scores_match_the_reference_per_prompt(
    checkpoint: Path, image: np.ndarray
) -> None:
    fast = FastSamProposalSource(checkpoint, "vit_tiny", device="cpu", points_per_side=6)
    ours = fast.engine.prompt_scores(image)
    theirs = reference_prompt_scores(fast.engine.model, image, points_per_side=6)
    assert ours["predicted_iou"].shape == theirs["predicted_iou"].shape == (108,)
    np.testing.assert_allclose(ours["predicted_iou"], theirs["predicted_iou"], atol=1e-5)
    np.testing.assert_allclose(ours["stability_score"], theirs["stability_score"], atol=1e-5)
    finite = np.isfinite(ours["stability_score"])
    assert np.ptp(ours["stability_score"][finite]) > 0.2  # varied enough to test filtering
    assert np.all(ours["stability_bound"][finite] >= ours["stability_score"][finite])


@pytest.mark.parametrize(
    "settings",
    [
        {"points_per_side": 8, **PERMISSIVE},
        {"points_per_side": 8, **PERMISSIVE, "stability_score_thresh": 0.3},
        {"points_per_side": 6, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.2},
    ],
    ids=["permissive", "stability", "nms"],
)
def test_masks_agree_with_the_reference_generator(
    checkpoint: Path, image: np.ndarray, settings: dict[str, Any]
) -> None:
    reference, fast = _propose_both(checkpoint, image, **settings)
    agreement = mask_agreement(reference, fast)
    assert len(reference) >= 1
    assert agreement["count_rel_diff"] <= 0.05
    assert agreement["best_iou_median"] >= 0.98
    assert fast.source == "sam_fast" and fast.masks.shape[1:] == image.shape[:2]
    assert fast.scores.dtype == np.float32 and np.all(np.diff(fast.scores) <= 0)
    if len(fast) == len(reference):  # float32 on the CPU: the same scores, best first
        np.testing.assert_allclose(fast.scores, reference.scores, atol=1e-5)


def test_crops_agree_with_the_reference_generator(checkpoint: Path, image: np.ndarray) -> None:
    reference, fast = _propose_both(
        checkpoint, image, points_per_side=4, crop_n_layers=1, crop_nms_thresh=1.0, **PERMISSIVE
    )
    agreement = mask_agreement(reference, fast)
    assert len(reference) > 16  # masks from the whole image and from the 4 crops
    assert agreement["count_rel_diff"] <= 0.05 and agreement["best_iou_median"] >= 0.98


def test_bf16_encoder_agrees_within_tolerance(checkpoint: Path, image: np.ndarray) -> None:
    settings: dict[str, Any] = {"device": "cpu", "points_per_side": 6, **PERMISSIVE}
    reference = SamProposalSource(checkpoint, "vit_tiny", **settings).propose(image)
    bf16 = FastSamProposalSource(checkpoint, "vit_tiny", precision="bf16", **settings)
    agreement = mask_agreement(reference, bf16.propose(image))
    assert agreement["count_rel_diff"] <= 0.05 and agreement["best_iou_median"] >= 0.98
    fp32 = FastSamProposalSource(checkpoint, "vit_tiny", **settings)
    assert fp32.engine.precision == "fp32"  # the CPU default
    assert bf16.settings_key() != fp32.settings_key()


def test_nothing_passing_gives_empty_proposals_of_the_image_size(
    checkpoint: Path, image: np.ndarray
) -> None:
    fast = FastSamProposalSource(
        checkpoint, "vit_tiny", device="cpu", points_per_side=4, pred_iou_thresh=1.0
    )
    proposals = fast.propose(image)
    assert len(proposals) == 0 and proposals.masks.shape == (0, *image.shape[:2])


def _count_encoder_calls(source: FastSamProposalSource) -> list[int]:
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    # The engine runs the encoder's modules itself (fused attention): its neck runs once per
    # encoder pass.
    source.engine.model.image_encoder.neck.register_forward_hook(hook)
    return calls


def test_embedding_cache_hit_skips_the_encoder_and_other_weights_miss(
    checkpoint: Path, image: np.ndarray, tmp_path: Path
) -> None:
    settings: dict[str, Any] = {"device": "cpu", "points_per_side": 4, **PERMISSIVE}
    cache = tmp_path / "embeddings"
    first = FastSamProposalSource(checkpoint, "vit_tiny", embedding_cache=cache, **settings)
    first_calls = _count_encoder_calls(first)
    expected = first.propose(image)
    assert first_calls == [1]

    again = FastSamProposalSource(checkpoint, "vit_tiny", embedding_cache=cache, **settings)
    again_calls = _count_encoder_calls(again)
    cached = again.propose(image)
    assert again_calls == [0]
    np.testing.assert_array_equal(cached.masks, expected.masks)
    np.testing.assert_array_equal(cached.scores, expected.scores)
    again.propose(image[:, ::-1].copy())  # other pixels: encoded
    assert again_calls == [1]

    other = save_tiny_sam(tmp_path / "other.pth", seed=1, logit_scale=30.0)
    retrained = FastSamProposalSource(other, "vit_tiny", embedding_cache=cache, **settings)
    retrained_calls = _count_encoder_calls(retrained)
    retrained.propose(image)
    assert retrained_calls == [1]
    bf16 = FastSamProposalSource(
        checkpoint, "vit_tiny", embedding_cache=cache, precision="bf16", **settings
    )
    bf16_calls = _count_encoder_calls(bf16)
    bf16.propose(image)
    assert bf16_calls == [1]  # embeddings of another precision are not reused


def test_batched_images_give_each_image_its_own_proposals(
    checkpoint: Path, image: np.ndarray
) -> None:
    fast = FastSamProposalSource(
        checkpoint, "vit_tiny", device="cpu", points_per_side=4, image_batch=2, **PERMISSIVE
    )
    calls = _count_encoder_calls(fast)
    flipped = image[::-1].copy()
    together = fast.propose_batch([image, flipped])
    assert calls == [1]  # both images in one encoder pass
    for single, batched in zip([image, flipped], together, strict=True):
        alone = fast.propose(single)
        assert mask_agreement(alone, batched)["best_iou_median"] >= 0.98


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((32, 32), dtype=np.uint8),
        np.zeros((32, 32, 4), dtype=np.uint8),
        np.zeros((32, 32, 3), dtype=np.float32),
        np.zeros((0, 32, 3), dtype=np.uint8),
    ],
    ids=["gray", "rgba", "float", "empty"],
)
def test_bad_images_are_shape_errors(checkpoint: Path, bad: np.ndarray) -> None:
    fast = FastSamProposalSource(checkpoint, "vit_tiny", device="cpu", points_per_side=2)
    with pytest.raises(ShapeError, match="H x W x 3 uint8"):
        fast.propose(bad)
    with pytest.raises(ShapeError):
        fast.propose_batch([np.zeros((8, 8, 3), dtype=np.uint8), bad])


def test_settings_are_validated_with_the_valid_values(checkpoint: Path) -> None:
    base = {"checkpoint": checkpoint, "model_type": "vit_tiny", "device": "cpu"}
    with pytest.raises(ConfigError, match="valid: auto, bf16, fp32"):
        build_proposal_source("sam_fast", **base, precision="fp8")
    with pytest.raises(ConfigError, match="vit_b, vit_l, vit_h, vit_tiny"):
        build_proposal_source("sam_fast", **{**base, "model_type": "vit_giant"})
    with pytest.raises(ConfigError, match="points_per_side"):
        build_proposal_source("sam_fast", **base, points_per_side=0)
    with pytest.raises(ConfigError, match="box_nms_thresh"):
        build_proposal_source("sam_fast", **base, box_nms_thresh=1.5)
    with pytest.raises(ConfigError, match="valid: checkpoint, model_type"):
        build_proposal_source("sam_fast", **base, engine="turbo")
    with pytest.raises(ConfigError, match="valid names: offline, sam, sam_fast"):
        build_proposal_source("sam_turbo")
    with pytest.raises(ConfigError, match="needs checkpoint"):
        build_proposal_source("sam_fast", model_type="vit_b")


def test_registry_builds_a_proposal_source_named_by_its_weights(checkpoint: Path) -> None:
    source = build_proposal_source(
        "sam_fast", checkpoint=checkpoint, model_type="vit_tiny", device="cpu"
    )
    assert isinstance(source, ProposalSource) and source.name == "sam_fast"
    assert "vit_tiny" in source.describe() and "fp32 on cpu" in source.describe()
    reference = build_proposal_source(
        "sam", checkpoint=checkpoint, model_type="vit_tiny", device="cpu"
    )
    assert source.settings_key() != reference.settings_key()
    faster = build_proposal_source(
        "sam_fast", checkpoint=checkpoint, model_type="vit_tiny", device="cpu", image_batch=8
    )
    assert faster.settings_key() == source.settings_key()  # batch sizes choose no masks


def test_packed_masks_round_trip_in_numpy_bit_order() -> None:
    masks = torch.rand(5, 7, 9) > 0.5
    packed = pack_masks(masks).numpy()
    np.testing.assert_array_equal(packed, np.packbits(masks.numpy().reshape(5, -1), axis=1))
    np.testing.assert_array_equal(unpack_masks(packed, 7, 9), masks.numpy())


def test_low_resolution_stability_bounds_the_exact_score() -> None:
    torch.manual_seed(0)
    noise = torch.randn(24, 1, 256, 256) * torch.linspace(5, 40, 24)[:, None, None, None]
    smooth = torch.nn.functional.avg_pool2d(noise, 9, 1, 4)[:, 0]
    for size, input_size in [((96, 128), (768, 1024)), ((517, 622), (851, 1024))]:
        exact = stability_score(upscale_logits(smooth, input_size, size, 1024), 0.0, 1.0)
        bound = stability_upper_bound(smooth, input_size, 1024, 0.0, 1.0)
        finite = torch.isfinite(exact)
        assert finite.sum() > 12 and float(exact[finite].min()) < 0.9
        assert bool((bound[finite] >= exact[finite]).all())


def test_stability_bound_equals_float_max_filters() -> None:
    """The boolean dilation and erosion give the bound that 3 x 3 float max filters (padded
    with -inf, so nothing reaches past the valid region) give."""
    torch.manual_seed(1)
    noise = torch.randn(16, 1, 256, 256) * torch.linspace(2, 30, 16)[:, None, None, None]
    logits = torch.nn.functional.avg_pool2d(noise, 7, 1, 3)[:, 0]
    for input_size in [(1024, 1024), (851, 1024), (1024, 333)]:
        rows, cols = (-(-side * 256 // 1024) for side in input_size)
        valid = logits[:, None, :rows, :cols]
        dilated = torch.nn.functional.max_pool2d(valid, 3, stride=1, padding=1)
        eroded = -torch.nn.functional.max_pool2d(-valid, 3, stride=1, padding=1)
        high = (dilated > 1.0).sum(dim=(-3, -2, -1)).float()
        low = (eroded > -1.0).sum(dim=(-3, -2, -1)).float()
        expected = torch.where(low > 0, high / low.clamp(min=1.0), torch.inf)
        bound = stability_upper_bound(logits, input_size, 1024, 0.0, 1.0)
        assert bool(torch.isfinite(expected).all()) and float(expected.min()) < 0.9
        torch.testing.assert_close(bound, expected + STABILITY_BOUND_SLACK, rtol=0, atol=0)


def test_best_iou_finds_the_matching_mask() -> None:
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, :2], masks[1, 2:] = True, True
    np.testing.assert_allclose(best_ious(masks, masks[::-1].copy()), [1.0, 1.0])
    np.testing.assert_allclose(best_ious(masks, masks[:1]), [1.0, 0.0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_engine_agrees_with_the_cpu_reference(
    checkpoint: Path, image: np.ndarray
) -> None:
    settings: dict[str, Any] = {"points_per_side": 8, **PERMISSIVE}
    reference = SamProposalSource(checkpoint, "vit_tiny", device="cpu", **settings)
    fast = FastSamProposalSource(checkpoint, "vit_tiny", device="cuda", **settings)
    assert fast.engine.precision == "bf16"
    ours = fast.engine.prompt_scores(image)
    theirs = reference_prompt_scores(reference._generator.predictor.model, image, 8)
    np.testing.assert_allclose(ours["predicted_iou"], theirs["predicted_iou"], atol=0.05)
    agreement = mask_agreement(reference.propose(image), fast.propose(image))
    assert agreement["count_rel_diff"] <= 0.05 and agreement["best_iou_median"] >= 0.98
