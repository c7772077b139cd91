"""How closely two SAM mask generators agree: per-prompt scores and final masks.

Used to check ``SamMaskEngine`` against ``SamAutomaticMaskGenerator`` on the same weights and
images (tests, ``bench/proposals.py``). ``reference_prompt_scores`` reproduces the reference's
unfiltered per-mask scores; ``mask_agreement`` matches every reference mask to its best
engine mask by IoU.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from samdsk.types import Proposals

REFERENCE_BATCH = 64  # the reference generator's default points_per_batch


def reference_prompt_scores(
    model: Any, image: np.ndarray, points_per_side: int, offset: float = 1.0
) -> dict[str, np.ndarray]:
    """The reference's unfiltered per-mask ``predicted_iou`` and ``stability_score`` for the
    whole-image grid of an H x W x 3 uint8 image: float32 arrays, 3 masks per prompt,
    prompt-major (the order ``SamMaskEngine.prompt_scores`` uses)."""
    from segment_anything import SamPredictor
    from segment_anything.utils.amg import build_point_grid, calculate_stability_score

    predictor = SamPredictor(model)
    height, width = image.shape[:2]
    points = build_point_grid(points_per_side) * np.array([[width, height]])
    ious, stabilities = [], []
    with torch.inference_mode():
        predictor.set_image(image)
        for masks, iou in reference_decode(predictor, points, (height, width)):
            ious.append(iou.flatten(0, 1).float().cpu())
            flat = masks.flatten(0, 1)
            stability = calculate_stability_score(flat, model.mask_threshold, offset)
            stabilities.append(stability.float().cpu())
    return {
        "predicted_iou": torch.cat(ious).numpy().astype(np.float32),
        "stability_score": torch.cat(stabilities).numpy().astype(np.float32),
    }


def reference_decode(
    predictor: Any, points: np.ndarray, size: tuple[int, int]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(B x 3 x H x W mask logits, B x 3 predicted IoU) of a ``SamPredictor`` with its image
    set, for P x 2 pixel points (x, y) on an image of ``size`` (H, W), in the reference
    generator's batches."""
    for start in range(0, len(points), REFERENCE_BATCH):
        batch = predictor.transform.apply_coords(points[start : start + REFERENCE_BATCH], size)
        coords = torch.as_tensor(batch, device=predictor.device)
        labels = torch.ones(len(coords), dtype=torch.int, device=predictor.device)
        masks, iou, _ = predictor.predict_torch(
            coords[:, None, :], labels[:, None], multimask_output=True, return_logits=True
        )
        yield masks, iou


def best_ious(reference: np.ndarray, candidate: np.ndarray, device: str = "cpu") -> np.ndarray:
    """For each of N reference masks (N x H x W bool), the highest IoU with any of M candidate
    masks (M x H x W bool): N float32 in [0, 1] (0 when M == 0; 1 for two empty masks)."""
    if len(reference) == 0:
        return np.zeros(0, dtype=np.float32)
    if len(candidate) == 0:
        return np.zeros(len(reference), dtype=np.float32)
    ref = torch.as_tensor(reference.reshape(len(reference), -1), device=device).float()
    cand = torch.as_tensor(candidate.reshape(len(candidate), -1), device=device).float()
    # Exact for masks under 2**24 pixels: float32 sums of 0/1 products are integers.
    inter = ref @ cand.T
    union = ref.sum(1)[:, None] + cand.sum(1)[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
    return iou.max(dim=1).values.cpu().numpy().astype(np.float32)


def mask_agreement(
    reference: Proposals, candidate: Proposals, device: str = "cpu"
) -> dict[str, Any]:
    """Counts and best-IoU statistics of ``candidate`` against ``reference``: the median
    best IoU per reference mask and the relative difference in mask counts."""
    best = best_ious(reference.masks, candidate.masks, device)
    count_ref, count_cand = len(reference), len(candidate)
    return {
        "reference_masks": count_ref,
        "engine_masks": count_cand,
        "count_rel_diff": abs(count_cand - count_ref) / max(count_ref, 1),
        "best_iou_median": float(np.median(best)) if len(best) else 1.0,
        "best_iou_min": float(best.min()) if len(best) else 1.0,
        "best_iou_below_0_9": int((best < 0.9).sum()),
    }
