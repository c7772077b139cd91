"""Strong perturbations for machine-labelled samples (noisy-student training).

A model trained on machine labels under the mild augmentations that made them learns to repeat
the model that made them, mistakes included. Self-training gains come from fitting those labels
under perturbations the labelling model never had to handle (Xie et al., "Self-training with
Noisy Student", CVPR 2020; French et al., "Semi-supervised semantic segmentation needs strong,
varied perturbations", BMVC 2020): a hue rotation and stronger colour changes, blur, and
CutMix, which pastes a box of one machine-labelled sample into another, image and mask
together, so every pixel keeps its label.

Only the selected samples change (the machine-labelled ones, or every one for the control that
perturbs human labels too); a batch with none selected is returned as given and draws nothing
from the generator, so training on human labels alone is unaffected.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from samdsk.model.augment import colour_jitter

MAX_HUE_SHIFT_DEG = 30.0
STRONG_JITTER = 0.4  # on top of the mild jitter every sample gets
BLUR_PROBABILITY = 0.5
BLUR_SIGMA = (0.1, 1.5)  # in pixels of the training size
BLUR_RADIUS = 4  # kernel of 9 taps: about 3 sigma at the largest sigma
CUTMIX_PROBABILITY = 0.5
CUTMIX_AREA = (0.2, 0.5)  # the pasted box's share of the image
CUTMIX_ASPECT = (0.5, 2.0)

# RGB <-> YIQ: a rotation of the (I, Q) chroma plane turns the hue and keeps the luma.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def strong_perturbation(
    images: torch.Tensor, masks: torch.Tensor, selected: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Perturb the ``selected`` (B bool) samples of images (B x 3 x H x W float in [0, 1]) and
    masks (B x H x W class indices): hue rotation, strong colour jitter, blur, then CutMix
    among the selected samples. Returns new tensors of the same shapes and dtypes."""
    index = torch.nonzero(selected).flatten()
    if index.numel() == 0:
        return images, masks
    chosen_images, chosen_masks = images[index], masks[index]
    hue_shift = _between(len(index), (-MAX_HUE_SHIFT_DEG, MAX_HUE_SHIFT_DEG), generator)
    chosen_images = rotate_hue(chosen_images, hue_shift)
    chosen_images = colour_jitter(chosen_images, generator, strength=STRONG_JITTER)
    chosen_images = random_blur(chosen_images, generator)
    chosen_images, chosen_masks = cutmix(chosen_images, chosen_masks, generator)
    images, masks = images.clone(), masks.clone()
    images[index], masks[index] = chosen_images, chosen_masks
    return images, masks


def rotate_hue(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image's hue by ``degrees`` (B) in YIQ space; the luma is kept."""
    radians = degrees.to(torch.float64) * (math.pi / 180.0)
    rotation = torch.zeros(len(degrees), 3, 3, dtype=torch.float64)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1], rotation[:, 1, 2] = torch.cos(radians), -torch.sin(radians)
    rotation[:, 2, 1], rotation[:, 2, 2] = torch.sin(radians), torch.cos(radians)
    matrices = (_YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ).to(images.dtype)
    return torch.einsum("bij,bjhw->bihw", matrices, images).clamp(0.0, 1.0)


def random_blur(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian blur of a random sigma on each image with probability ``BLUR_PROBABILITY``."""
    batch, channels, height, width = images.shape
    blurred = torch.rand(batch, generator=generator) < BLUR_PROBABILITY
    sigma = _between(batch, BLUR_SIGMA, generator)
    taps = torch.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=torch.float32)
    kernels = torch.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    identity = (taps == 0).float()
    kernels = torch.where(blurred[:, None], kernels, identity[None, :]).to(images.dtype)
    # Separable: one depthwise pass along rows, one along columns, every channel its own group.
    per_channel = kernels.repeat_interleave(channels, dim=0)
    flat = images.reshape(1, batch * channels, height, width)
    flat = F.pad(flat, (BLUR_RADIUS, BLUR_RADIUS, 0, 0), mode="reflect")
    flat = F.conv2d(flat, per_channel[:, None, None, :], groups=batch * channels)
    flat = F.pad(flat, (0, 0, BLUR_RADIUS, BLUR_RADIUS), mode="reflect")
    flat = F.conv2d(flat, per_channel[:, None, :, None], groups=batch * channels)
    return flat.reshape(batch, channels, height, width)


def cutmix(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability ``CUTMIX_PROBABILITY`` per sample, paste a random box of another
    sample of the batch (image and mask alike) into it."""
    batch, _, height, width = images.shape
    partners = torch.randperm(batch, generator=generator)
    pasted = torch.rand(batch, generator=generator) < CUTMIX_PROBABILITY
    area = _between(batch, CUTMIX_AREA, generator) * height * width
    aspect = torch.exp(
        _between(batch, (math.log(CUTMIX_ASPECT[0]), math.log(CUTMIX_ASPECT[1])), generator)
    )
    box_h = (area / aspect).sqrt().round().clamp(1, height).long()
    box_w = (area * aspect).sqrt().round().clamp(1, width).long()
    top = (torch.rand(batch, generator=generator) * (height - box_h + 1).float()).long()
    left = (torch.rand(batch, generator=generator) * (width - box_w + 1).float()).long()
    rows = torch.arange(height)[None, :, None]
    cols = torch.arange(width)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + box_h)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + box_w)[:, None, None])
        & pasted[:, None, None]
    )
    mixed_images = torch.where(inside[:, None], images[partners], images)
    mixed_masks = torch.where(inside, masks[partners], masks)
    return mixed_images, mixed_masks


def _between(count: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(count, generator=generator)
