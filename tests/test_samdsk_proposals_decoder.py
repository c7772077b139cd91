"""The restructured SAM mask decoder against segment_anything's ``MaskDecoder``: the same
logits and predicted IoUs in float32 (up to rounding), bf16 within its tolerance, for SAM's
two-layer decoder and other depths and widths, and the engine's use of it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer
from segment_anything.modeling.common import LayerNorm2d

from samdsk.proposals.agreement import mask_agreement
from samdsk.proposals.engine import EngineSettings, SamMaskEngine
from samdsk.proposals.engine_decoder import FastMaskDecoder
from samdsk.proposals.sam import SamProposalSource
from samdsk.proposals.sam_fast import FastSamProposalSource
from samdsk.proposals.weights import build_sam_vit_tiny
from samdsk.types import Proposals
from tests.tiny_sam import kvasir_image, save_tiny_sam


def small_sam(depth: int, width: int, heads: int, grid: int = 16) -> Any:
    """The prompt encoder and mask decoder of a SAM, randomly initialised: SAM's layout
    (two-way transformer, 4 mask tokens, two transposed convolutions) at a small size."""
    torch.manual_seed(depth * 100 + width + heads)
    decoder = MaskDecoder(
        transformer_dim=width,
        transformer=TwoWayTransformer(
            depth=depth, embedding_dim=width, mlp_dim=2 * width, num_heads=heads
        ),
        iou_head_hidden_dim=width,
    )
    with torch.no_grad():  # norms far from identity, so a misplaced weight or bias shows
        for module in decoder.modules():
            if isinstance(module, torch.nn.LayerNorm | LayerNorm2d):
                module.weight.normal_(1.0, 0.3)
                module.bias.normal_(0.0, 0.2)
    prompts = PromptEncoder(
        embed_dim=width,
        image_embedding_size=(grid, grid),
        input_image_size=(16 * grid, 16 * grid),
        mask_in_chans=16,
    )
    return SimpleNamespace(mask_decoder=decoder.eval(), prompt_encoder=prompts.eval())


def reference_and_fast(
    model: Any, dtype: torch.dtype, prompts: int = 6, seed: int = 0, device: str = "cpu"
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((logits, IoU) of ``MaskDecoder`` in float32, (logits, IoU) of ``FastMaskDecoder``),
    multimask, for ``prompts`` random points on one random image embedding, on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    model.mask_decoder.to(device)
    encoder = model.prompt_encoder.to(device)
    width, (height, columns) = encoder.embed_dim, encoder.image_embedding_size
    embedding = torch.randn(1, width, height, columns, generator=generator).to(device)
    side = encoder.input_image_size[0]
    points = (torch.rand(prompts, 1, 2, generator=generator) * side).to(device)
    labels = torch.ones(prompts, 1, dtype=torch.int, device=device)
    with torch.inference_mode():
        sparse, dense = encoder(points=(points, labels), boxes=None, masks=None)
        reference = model.mask_decoder(
            image_embeddings=embedding,
            image_pe=encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        fast = FastMaskDecoder(model, dtype)
        ours = fast(fast.image_terms(embedding), sparse)
    return reference, ours


@pytest.mark.parametrize(("depth", "width", "heads"), [(2, 64, 8), (1, 32, 2), (3, 48, 4)])
def test_float32_equals_the_reference_decoder(depth: int, width: int, heads: int) -> None:
    (logits, iou), (our_logits, our_iou) = reference_and_fast(
        small_sam(depth, width, heads), torch.float32
    )
    assert our_logits.shape == logits.shape == (6, 3, 64, 64)
    assert our_logits.dtype == our_iou.dtype == torch.float32
    scale = float(logits.abs().max())
    assert scale > 0.05  # logits that a wrong term would visibly move
    torch.testing.assert_close(our_logits, logits, atol=2e-6 * max(scale, 1.0), rtol=1e-4)
    torch.testing.assert_close(our_iou, iou, atol=2e-6, rtol=1e-4)


def test_bf16_agrees_within_bf16_tolerance() -> None:
    model = small_sam(2, 64, 8)
    (logits, iou), (our_logits, our_iou) = reference_and_fast(model, torch.bfloat16, prompts=8)
    scale = float(logits.abs().max())
    assert float((our_logits - logits).abs().max()) <= 0.03 * scale
    assert float((our_iou - iou).abs().max()) <= 0.01
    assert our_iou.dtype == torch.float32  # scores from float32 tokens: no bf16 ties
    assert len(torch.unique(our_iou)) == our_iou.numel()
    large = logits.abs() > 0.05 * scale
    assert bool(((our_logits > 0) == (logits > 0))[large].all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_decoder_agrees_with_the_float32_reference() -> None:
    """At SAM's decoder sizes (width 256, 8 heads, a 64 x 64 grid), with attention allowed
    only through the fused kernels: a fallback to the slow one fails here."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = small_sam(2, 256, 8, grid=64)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        (logits, iou), (our_logits, our_iou) = reference_and_fast(
            model, torch.bfloat16, prompts=64, device="cuda"
        )
    scale = float(logits.abs().max())
    assert float((our_logits - logits).abs().max()) <= 0.03 * scale
    assert float((our_iou - iou).abs().max()) <= 0.01
    large = logits.abs() > 0.05 * scale
    assert bool(((our_logits > 0) == (logits > 0))[large].all())


def test_mask_logits_of_chosen_prompts_are_those_of_the_whole_batch() -> None:
    model = small_sam(2, 64, 8)
    fast = FastMaskDecoder(model, torch.float32)
    embedding = torch.randn(1, 64, 16, 16)
    points = torch.rand(5, 1, 2) * 256
    with torch.inference_mode():
        sparse, _ = model.prompt_encoder(
            points=(points, torch.ones(5, 1, dtype=torch.int)), boxes=None, masks=None
        )
        terms = fast.image_terms(embedding)
        decoded = fast.transform(terms, sparse)
        every = fast.mask_logits(terms, decoded.keys, decoded.hyper)
        rows = torch.tensor([3, 1])
        chosen = fast.mask_logits(terms, decoded.keys[rows], decoded.hyper[rows])
        none = fast.mask_logits(terms, decoded.keys[:0], decoded.hyper[:0])
    torch.testing.assert_close(chosen, every[rows])
    assert none.shape == (0, 3, 64, 64)


def test_a_decoder_of_another_layout_is_refused() -> None:
    model = small_sam(2, 32, 2)
    model.mask_decoder.transformer.layers[0].skip_first_layer_pe = False
    with pytest.raises(ValueError, match="two-way transformer"):
        FastMaskDecoder(model, torch.float32)


def test_engine_decodes_masks_only_for_prompts_above_the_iou_threshold(tmp_path: Path) -> None:
    """A threshold at the median predicted IoU: half the prompts get no mask logits, and the
    proposals are still the reference generator's."""
    checkpoint = save_tiny_sam(tmp_path / "tiny.pth", logit_scale=30.0)
    image = kvasir_image(96)
    common: dict[str, Any] = {
        "checkpoint": checkpoint,
        "model_type": "vit_tiny",
        "device": "cpu",
        "points_per_side": 8,
        "stability_score_thresh": 0.0,
        "box_nms_thresh": 1.0,
    }
    scores = FastSamProposalSource(**common).engine.prompt_scores(image)["predicted_iou"]
    # Random weights predict IoUs near 0: shift them so that the median prompt sits at 0.5.
    state = torch.load(checkpoint, weights_only=True)
    shift = 0.5 - float(np.median(scores.reshape(-1, 3).max(axis=1)))
    state["mask_decoder.iou_prediction_head.layers.1.bias"] += shift
    torch.save(state, checkpoint)
    per_prompt = scores.reshape(-1, 3).max(axis=1) + shift
    threshold = 0.5
    fast = FastSamProposalSource(**common, pred_iou_thresh=threshold)
    made: list[int] = []
    original = fast.engine.decoder.fast.mask_logits

    def counting(terms: Any, keys: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        made.append(int(keys.shape[0]))
        return original(terms, keys, hyper)

    fast.engine.decoder.fast.mask_logits = counting  # type: ignore[method-assign]
    ours = fast.propose(image)
    assert sum(made) == int((per_prompt > threshold).sum()) < len(per_prompt)
    reference = SamProposalSource(**common, pred_iou_thresh=threshold).propose(image)
    agreement = mask_agreement(reference, ours)
    assert len(reference) > 10
    assert agreement["count_rel_diff"] <= 0.05 and agreement["best_iou_median"] >= 0.98


def _two_layer_tiny_sam() -> Any:
    """The tiny SAM with a two-layer decoder (SAM's depth; the tiny model's has one), masks of
    varied stability and predicted IoUs around 0.5."""
    torch.manual_seed(3)
    model = build_sam_vit_tiny()
    model.mask_decoder = MaskDecoder(
        transformer_dim=32,
        transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=4),
        iou_head_hidden_dim=32,
    )
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(300.0)
            mlp.layers[-1].bias.zero_()
        head = model.mask_decoder.iou_prediction_head.layers[-1]
        head.weight.mul_(5.0)
        head.bias.fill_(0.5)
    return model.eval()


def _reference_proposals(model: Any, image: np.ndarray, **settings: Any) -> Proposals:
    records = SamAutomaticMaskGenerator(model, **settings).generate(image)
    records.sort(key=lambda record: -record["predicted_iou"])
    return Proposals(
        masks=np.stack([record["segmentation"] for record in records]).astype(bool),
        scores=np.array([record["predicted_iou"] for record in records], dtype=np.float32),
        source="sam",
    )


@pytest.mark.parametrize("iou_threshold", [0.0, 0.5])
def test_engine_with_a_two_layer_decoder_agrees_with_the_reference(iou_threshold: float) -> None:
    model = _two_layer_tiny_sam()
    image = kvasir_image(96)
    settings = {
        "points_per_side": 8,
        "pred_iou_thresh": iou_threshold,
        "stability_score_thresh": 0.2,
        "box_nms_thresh": 1.0,
    }
    with torch.inference_mode():
        reference = _reference_proposals(model, image, **settings)
        engine = SamMaskEngine(
            model, EngineSettings(**settings), weights_sha256="test", model_type="vit_tiny"
        )
        (ours,) = engine.generate([image])
    agreement = mask_agreement(reference, ours)
    assert len(reference) > 10 and (iou_threshold == 0.0 or len(reference) < 3 * 64)
    assert agreement["count_rel_diff"] <= 0.05 and agreement["best_iou_median"] >= 0.98
    if len(ours) == len(reference):
        np.testing.assert_allclose(ours.scores, reference.scores, atol=1e-5)
