"""Pure tensor helpers of the fast SAM mask engine: upscaling, stability, packing.

Every function works on whole batches on whatever device its tensors live on and never reads a
value back to the host, so the engine synchronises once per batch, not once per mask.
Coordinates are (row, column) for sizes and (x0, y0, x1, y1) for boxes, as in
segment_anything.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

# Rounding slack of the low-resolution stability bound: the bound counts whole 4 x 4 blocks of
# the 1024-pixel frame, while the exact score counts output pixels, whose grid is not aligned
# with those blocks.
STABILITY_BOUND_SLACK = 0.02


def upscale_logits(
    low_res: torch.Tensor, input_size: tuple[int, int], size: tuple[int, int], frame: int
) -> torch.Tensor:
    """N x h x w low-resolution logits -> N x H x W logits at ``size`` (H, W).

    The same two bilinear steps as ``Sam.postprocess_masks`` (to the frame x frame model
    input, crop the padding away to ``input_size``, then to ``size``), in float32, so the
    masks are those of the reference generator.
    """
    logits = low_res.float()[:, None]
    logits = F.interpolate(logits, (frame, frame), mode="bilinear", align_corners=False)
    logits = logits[..., : input_size[0], : input_size[1]]
    logits = F.interpolate(logits, size, mode="bilinear", align_corners=False)
    return logits[:, 0]


def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """N x H x W logits -> N float32 stability scores: IoU of the masks thresholded at
    ``threshold + offset`` and ``threshold - offset`` (NaN for an empty union, as in
    segment_anything's ``calculate_stability_score``)."""
    high = (logits > threshold + offset).sum(dim=(-2, -1), dtype=torch.int32)
    low = (logits > threshold - offset).sum(dim=(-2, -1), dtype=torch.int32)
    return high.float() / low.float()


def stability_upper_bound(
    low_res: torch.Tensor, input_size: tuple[int, int], frame: int, threshold: float, offset: float
) -> torch.Tensor:
    """N x h x w low-resolution logits -> N float32 upper bounds of the exact stability score.

    Each upscaled logit is a convex combination of the low-resolution logits in the 3 x 3
    block around it, so a pixel above ``threshold + offset`` lies in the 3 x 3 dilation of the
    low-resolution high mask, and a pixel whose 3 x 3 block lies wholly above ``threshold -
    offset`` (the erosion) is in the exact low mask. The area ratio of the dilated high mask
    to the eroded low mask therefore bounds the exact score from above (up to the rounding
    slack): a mask below the threshold here is below it after upscaling too. An empty eroded
    mask gives +inf (no bound: the mask is kept and scored exactly).
    """
    scale = low_res.shape[-1] / frame
    rows = min(low_res.shape[-2], int(np.ceil(input_size[0] * scale)))
    cols = min(low_res.shape[-1], int(np.ceil(input_size[1] * scale)))
    valid = low_res[:, :rows, :cols]
    # A 3 x 3 maximum is above a level exactly where some pixel of the block is, and a minimum
    # exactly where all are: boolean dilation and erosion of the thresholded logits, a
    # quarter of the memory of float max filters. Neither reaches past the valid region,
    # which the exact score never sees.
    high = _neighbourhood(valid > threshold + offset, every=False).sum(dim=(-2, -1)).float()
    low = _neighbourhood(valid > threshold - offset, every=True).sum(dim=(-2, -1)).float()
    bound = torch.where(low > 0, high / low.clamp(min=1.0), torch.full_like(low, float("inf")))
    return bound + STABILITY_BOUND_SLACK


def _neighbourhood(mask: torch.Tensor, every: bool) -> torch.Tensor:
    """N x h x w bool -> whether any (``every``: all) pixel of each 3 x 3 block is set; pixels
    outside the frame are left out of a block."""
    out = mask
    for dim in (-1, -2):
        source, out = out, out.clone()
        length = source.shape[dim]
        for shift in (1, -1):
            start = max(shift, 0)
            target = out.narrow(dim, start, length - 1)
            neighbour = source.narrow(dim, max(-shift, 0), length - 1)
            if every:
                target &= neighbour
            else:
                target |= neighbour
    return out


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """N x H x W bool -> N x 4 float32 boxes (x0, y0, x1, y1), inclusive pixel indices;
    (0, 0, 0, 0) for an empty mask, as segment_anything's ``batched_mask_to_box``."""
    count, height, width = masks.shape
    if count == 0:
        return torch.zeros(0, 4, device=masks.device)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    row_index = torch.arange(height, device=masks.device)
    col_index = torch.arange(width, device=masks.device)
    bottom = (rows * row_index).amax(dim=1)
    top = torch.where(rows, row_index, height).amin(dim=1)
    right = (cols * col_index).amax(dim=1)
    left = torch.where(cols, col_index, width).amin(dim=1)
    boxes = torch.stack([left, top, right, bottom], dim=1)
    empty = ~rows.any(dim=1)
    return (boxes * (~empty)[:, None]).float()


def near_crop_edge(
    boxes: torch.Tensor, crop: tuple[int, int, int, int], image_size: tuple[int, int]
) -> torch.Tensor:
    """N x 4 boxes in crop coordinates -> N bool: touches an edge of the crop that is not an
    edge of the image (within 20 pixels), as segment_anything's ``is_box_near_crop_edge``."""
    x0, y0, _, _ = crop
    offset = torch.tensor([x0, y0, x0, y0], dtype=torch.float32, device=boxes.device)
    crop_box = torch.tensor(crop, dtype=torch.float32, device=boxes.device)
    image_box = torch.tensor(
        [0, 0, image_size[1], image_size[0]], dtype=torch.float32, device=boxes.device
    )
    absolute = boxes + offset
    at_crop = torch.isclose(absolute, crop_box[None], atol=20.0, rtol=0)
    at_image = torch.isclose(absolute, image_box[None], atol=20.0, rtol=0)
    return (at_crop & ~at_image).any(dim=1)


def pack_masks(masks: torch.Tensor) -> torch.Tensor:
    """N x H x W bool -> N x ceil(H*W / 8) uint8, 8 pixels per byte, most significant bit
    first (``np.packbits`` order), so that one small transfer carries all masks."""
    count = masks.shape[0]
    flat = masks.reshape(count, -1)
    pad = (-flat.shape[1]) % 8
    if pad:
        flat = F.pad(flat, (0, pad))
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=masks.device)
    return (flat.reshape(count, -1, 8).to(torch.uint8) * weights).sum(dim=2, dtype=torch.uint8)


def unpack_masks(packed: np.ndarray, height: int, width: int) -> np.ndarray:
    """N x ceil(H*W / 8) uint8 from ``pack_masks`` -> N x H x W bool."""
    bits = np.unpackbits(packed, axis=1, count=height * width)
    return bits.astype(bool).reshape(packed.shape[0], height, width)
