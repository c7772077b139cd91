"""Batched training augmentations in torch, applied identically to images and masks.

Geometry (flips, rotation, zoom/crop, shift) is one affine warp per sample: images are sampled
bilinearly and masks with nearest neighbour from the same sampling grid, so they stay aligned.
Borders are filled by reflection, which avoids black corners the model could learn from.
All randomness comes from the given ``torch.Generator``, so batches are reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEG = 20.0
ZOOM_RANGE = (0.8, 1.2)
JITTER = 0.2  # brightness, contrast and saturation factors drawn from [1 - J, 1 + J]


def random_affine(batch: int, generator: torch.Generator) -> torch.Tensor:
    """B x 2 x 3 affine matrices (``F.affine_grid`` convention: output -> input coordinates).

    Each combines random horizontal/vertical flips (p = 0.5 each), a rotation in +-20 degrees,
    a zoom in [0.8, 1.2] (above 1 = a random crop) and a shift that keeps a zoomed-in crop
    inside the image.
    """

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator)

    flip_x = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    flip_y = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    angle = uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG) * (math.pi / 180.0)
    zoom = uniform(*ZOOM_RANGE)
    max_shift = (1.0 - 1.0 / zoom).abs()
    shift = (torch.rand(batch, 2, generator=generator) * 2.0 - 1.0) * max_shift[:, None]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip_x, -sin * flip_y
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip_x, cos * flip_y
    theta[:, :, 2] = shift
    return theta


def warp(
    images: torch.Tensor, masks: torch.Tensor, theta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``theta`` (B x 2 x 3) to images (B x 3 x H x W float) and masks (B x H x W long).

    Returns the warped images (bilinear) and masks (nearest, same dtype as given).
    """
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    warped_images = _sample_images(images, grid)
    warped_masks = F.grid_sample(
        masks[:, None].to(images.dtype),
        grid,
        mode="nearest",
        padding_mode="reflection",
        align_corners=False,
    )
    return warped_images, warped_masks[:, 0].round().to(masks.dtype)


def warp_images(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``warp`` for images alone (B x 3 x H x W float, bilinear, reflected borders)."""
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return _sample_images(images, grid)


def _sample_images(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(
        images, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )


def colour_jitter(
    images: torch.Tensor, generator: torch.Generator, strength: float = JITTER
) -> torch.Tensor:
    """Random brightness, contrast and saturation on B x 3 x H x W float images in [0, 1]:
    each factor is drawn from [1 - strength, 1 + strength]."""
    batch = images.shape[0]

    def factor() -> torch.Tensor:
        return (1.0 + strength * (2.0 * torch.rand(batch, generator=generator) - 1.0))[
            :, None, None, None
        ]

    images = images * factor()
    gray = _grayscale(images)
    images = (images - gray.mean(dim=(2, 3), keepdim=True)) * factor() + gray.mean(
        dim=(2, 3), keepdim=True
    )
    gray = _grayscale(images)
    images = (images - gray) * factor() + gray
    return images.clamp(0.0, 1.0)


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random geometry then colour jitter: images B x 3 x H x W float in [0, 1], masks B x H x W.

    Returns tensors of the same shapes and dtypes; images stay in [0, 1].
    """
    theta = random_affine(images.shape[0], generator)
    images, masks = warp(images, masks, theta)
    return colour_jitter(images.clamp(0.0, 1.0), generator), masks


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
    return (images * weights[None, :, None, None]).sum(dim=1, keepdim=True)
