"""Training augmentations and batches: images and masks stay aligned, batches are reproducible."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from samdsk.model.augment import augment_batch, colour_jitter, random_affine, warp
from samdsk.model.config import TrainingSample
from samdsk.model.data import TrainingBatches, resize_samples


def blob_batch(batch: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey images of large black/white blobs, and masks that are exactly their white parts."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal((batch, size, size)), (0, 6, 6))
    white = noise > 0
    images = torch.from_numpy(white.astype(np.float32))[:, None].repeat(1, 3, 1, 1)
    return images, torch.from_numpy(white.astype(np.int64))


def mismatch(images: torch.Tensor, masks: torch.Tensor) -> float:
    return float(((images[:, 0] > 0.5) != (masks == 1)).float().mean())


def test_geometric_augmentation_moves_image_and_mask_together() -> None:
    images, masks = blob_batch(16, 64, seed=0)
    generator = torch.Generator().manual_seed(0)
    warped_images, warped_masks = warp(images, masks, random_affine(16, generator))
    assert warped_masks.dtype == masks.dtype and set(np.unique(warped_masks.numpy()).tolist()) <= {
        0,
        1,
    }
    # The warp really moved things, yet the thresholded image still equals the mask up to
    # pixels on blob edges (bilinear vs nearest sampling).
    assert mismatch(warped_images, masks) > 0.2
    assert mismatch(warped_images, warped_masks) < 0.03
    # The check catches a mask warped differently from its image.
    other_masks = warp(images, masks, random_affine(16, generator))[1]
    assert mismatch(warped_images, other_masks) > 0.2


def test_augment_batch_keeps_shapes_range_and_alignment() -> None:
    images, masks = blob_batch(8, 32, seed=1)
    out_images, out_masks = augment_batch(images, masks, torch.Generator().manual_seed(1))
    assert out_images.shape == images.shape and out_masks.shape == masks.shape
    assert out_images.min() >= 0.0 and out_images.max() <= 1.0
    # Jitter moves black and white levels, but white stays brighter than black.
    per_image_threshold = out_images[:, 0].mean(dim=(1, 2), keepdim=True)
    bright = out_images[:, 0] > per_image_threshold
    assert float((bright != (out_masks == 1)).float().mean()) < 0.05


def test_colour_jitter_changes_colours_within_bounds() -> None:
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    jittered = colour_jitter(images, torch.Generator().manual_seed(3))
    assert not torch.equal(jittered, images)
    assert jittered.min() >= 0.0 and jittered.max() <= 1.0


def test_batches_depend_only_on_seed_and_step() -> None:
    rng = np.random.default_rng(0)
    samples = [
        TrainingSample(
            rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), rng.random((40, 50)) > 0.5
        )
        for _ in range(5)
    ]
    data = resize_samples(samples, 32, num_classes=1)
    assert data.images.shape == (5, 32, 32, 3) and data.masks.shape == (5, 32, 32)
    batches = TrainingBatches(data, steps=4, batch_size=3, seed=7, num_classes=1)
    again = TrainingBatches(data, steps=4, batch_size=3, seed=7, num_classes=1)
    inputs, targets, weights = batches[2]
    assert inputs.shape == (3, 3, 32, 32) and targets.shape == (3, 1, 32, 32)
    assert weights.tolist() == [1.0, 1.0, 1.0]
    for a, b in zip(batches[2], again[2], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(batches[1][0], inputs)
    # Every sample is drawn once per epoch: steps 0-1 cover the first five draws.
    assert sorted(batches.order.reshape(-1)[:5].tolist()) == [0, 1, 2, 3, 4]
