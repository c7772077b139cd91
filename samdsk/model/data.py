"""Training data: resize once, then draw reproducible augmented batches.

Samples are resized to ``input_size`` once (uint8 cache), so each step only gathers, augments
and normalises. The batch of step ``k`` depends only on the seed and ``k`` (never on loader
workers), which makes training runs repeatable with any ``num_workers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from samdsk.errors import ShapeError
from samdsk.model.augment import augment_batch
from samdsk.model.config import MACHINE_AUGMENTATIONS, TrainingSample, check_image
from samdsk.model.strong_augment import strong_perturbation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ResizedSamples:
    """N samples at S x S: images N x S x S x 3 uint8, masks N x S x S uint8 class indices,
    weights N float32, machine N bool (the label was made by the method)."""

    images: np.ndarray
    masks: np.ndarray
    weights: np.ndarray
    machine: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """H x W x 3 uint8 -> size x size x 3 uint8 (bilinear; PIL smooths when shrinking)."""
    check_image(image)
    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """H x W class indices (uint8 or bool) -> size x size uint8 (nearest neighbour)."""
    resized = Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(resized, dtype=np.uint8)


def resize_samples(
    samples: Sequence[TrainingSample], size: int, num_classes: int
) -> ResizedSamples:
    """Resize every sample to ``size``; mask values above ``num_classes`` raise ``ShapeError``."""
    images = np.zeros((len(samples), size, size, 3), dtype=np.uint8)
    masks = np.zeros((len(samples), size, size), dtype=np.uint8)
    for i, sample in enumerate(samples):
        top = int(sample.mask.max())
        if top > num_classes:
            raise ShapeError(
                f"sample {i}: mask value {top} > num_classes={num_classes}; masks hold class "
                "indices 0..C (binarise 0/255 masks with mask > 0)"
            )
        images[i] = resize_image(sample.image, size)
        masks[i] = resize_mask(sample.mask, size)
    weights = np.array([s.weight for s in samples], dtype=np.float32)
    machine = np.array([s.machine for s in samples], dtype=bool)
    return ResizedSamples(images, masks, weights, machine)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """B x 3 x H x W float in [0, 1] -> ImageNet-normalised float."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device)
    return (images - mean[None, :, None, None]) / std[None, :, None, None]


def uint8_to_float(images: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def one_hot_targets(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """B x H x W class indices -> B x C x H x W float32; channel c is class c + 1."""
    classes = torch.arange(1, num_classes + 1, device=masks.device)
    return (masks[:, None].long() == classes[None, :, None, None]).float()


class TrainingBatches(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Item ``k`` is the batch of training step ``k``.

    Returns (inputs B x 3 x S x S normalised float32, targets B x C x S x S float32 in {0, 1},
    weights B float32). Sample order: concatenated random permutations from ``seed``, so every
    sample is seen once per epoch; batches may repeat samples when N < batch size. With
    ``human_share`` > 0 and both human and machine labels present, human and machine labels
    are drawn from separate permutation streams, human ones filling that share of the batch
    slots (spread evenly over the steps when share x batch size is not a whole number).
    With ``keep_empty_share`` and machine labels present, empty-mask samples (human or machine)
    and the rest are drawn from separate streams instead, empty ones filling the share of the
    batch slots that they hold among the human labels (when those hold both kinds).
    ``machine_augment="strong"`` perturbs the machine-labelled samples of each batch further
    (``strong_perturbation``); batches without one are the same as with ``"same"``.
    ``"strong_all"`` perturbs every sample, human labels too (the control that tells the
    perturbations' own effect from that of training machine labels under them).
    """

    def __init__(
        self,
        data: ResizedSamples,
        *,
        steps: int,
        batch_size: int,
        seed: int,
        num_classes: int,
        human_share: float = 0.0,
        keep_empty_share: bool = False,
        machine_augment: str = "same",
    ) -> None:
        if len(data) == 0:
            raise ShapeError("no training samples")
        if machine_augment not in MACHINE_AUGMENTATIONS:
            raise ValueError(f"machine_augment must be one of {MACHINE_AUGMENTATIONS}")
        self.machine_augment = machine_augment
        if not 0.0 <= human_share < 1.0:
            raise ValueError(f"human_share must be in [0, 1); got {human_share}")
        if keep_empty_share and human_share > 0.0:
            raise ValueError("keep_empty_share and human_share > 0 cannot be combined")
        self.data, self.seed, self.num_classes = data, seed, num_classes
        generator = torch.Generator().manual_seed(seed)
        streams = _stratified_streams(data, human_share, keep_empty_share)
        if streams is None:
            everything = np.arange(len(data))
            order = permutation_stream(everything, steps * batch_size, generator)
            self.order = order.reshape(steps, batch_size)
            return
        first, second, share = streams
        # First-stream slots of step k: floor(s*B*(k+1)) - floor(s*B*k), so they total s*B*steps.
        cumulative = np.floor(share * batch_size * np.arange(steps + 1)).astype(np.int64)
        first_slots = np.diff(cumulative)
        first_stream = permutation_stream(first, int(cumulative[-1]), generator)
        second_stream = permutation_stream(
            second, steps * batch_size - int(cumulative[-1]), generator
        )
        # First-stream slots come first in each batch; row-major filling keeps both in order.
        first_slot = np.arange(batch_size)[None, :] < first_slots[:, None]
        self.order = np.empty((steps, batch_size), dtype=np.int64)
        self.order[first_slot] = first_stream
        self.order[~first_slot] = second_stream

    def __len__(self) -> int:
        return int(self.order.shape[0])

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self.order[step]
        images = uint8_to_float(self.data.images[index])
        masks = torch.from_numpy(self.data.masks[index]).long()
        # One generator per step, seeded from (seed, step): independent of worker scheduling.
        step_seed = int(np.random.SeedSequence([self.seed, step]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(step_seed)
        images, masks = augment_batch(images, masks, generator)
        if self.machine_augment != "same":
            chosen = torch.from_numpy(self.data.machine[index])
            if self.machine_augment == "strong_all":
                chosen = torch.ones_like(chosen)
            images, masks = strong_perturbation(images, masks, chosen, generator)
        targets = one_hot_targets(masks, self.num_classes)
        return to_model_input(images), targets, torch.from_numpy(self.data.weights[index])


def permutation_stream(indices: np.ndarray, length: int, generator: torch.Generator) -> np.ndarray:
    """``length`` entries of ``indices``: concatenated random permutations (each index once
    per pass)."""
    passes = max(1, -(-length // len(indices)))
    permutations = [
        indices[torch.randperm(len(indices), generator=generator).numpy()] for _ in range(passes)
    ]
    return np.concatenate(permutations)[:length].astype(np.int64)


def _stratified_streams(
    data: ResizedSamples, human_share: float, keep_empty_share: bool
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The two index sets that batches draw from and the share of slots the first fills, or
    None when every batch draws from all samples alike."""
    machine = np.flatnonzero(data.machine)
    human = np.flatnonzero(~data.machine)
    if len(machine) == 0 or len(human) == 0:
        return None
    if human_share > 0.0:
        return human, machine, human_share
    if not keep_empty_share:
        return None
    # Machine labels are rarely empty (empty annotations wait for a reviewer by default), so
    # drawing from all samples alike teaches the model that something is nearly always there;
    # the human labels are the unbiased estimate of how often nothing is.
    empty = data.masks.reshape(len(data), -1).max(axis=1) == 0
    share = float(empty[human].mean())
    if share in (0.0, 1.0):
        return None
    return np.flatnonzero(empty), np.flatnonzero(~empty), share
