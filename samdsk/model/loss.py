"""Training loss (BCE + soft Dice, weighted per sample) and the validation Dice score."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DICE_SMOOTH = 1.0  # keeps the soft Dice of an empty target vs an empty prediction near 0 loss


def per_sample_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits + soft Dice loss per sample.

    logits, targets: B x C x H x W (targets in {0, 1}). Returns B float32: the mean BCE over
    pixels and channels plus the mean over channels of 1 - soft Dice.
    """
    logits, targets = logits.float(), targets.float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=(1, 2, 3))
    probs = torch.sigmoid(logits)
    overlap = (probs * targets).sum(dim=(2, 3))
    total = probs.sum(dim=(2, 3)) + targets.sum(dim=(2, 3))
    dice = (2.0 * overlap + DICE_SMOOTH) / (total + DICE_SMOOTH)
    return bce + (1.0 - dice).mean(dim=1)


def weighted_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Scalar loss: the batch mean of ``weights[b] * per_sample_loss[b]``.

    Dividing by the batch size (not by the sum of weights) keeps a down-weighted sample's
    influence small even in a batch of only such samples. A weight of 0 removes a sample's
    gradient; ``train_model`` also leaves such samples out so they do not shift BatchNorm.
    """
    losses = per_sample_loss(logits, targets)
    return (losses * weights.to(losses.device, losses.dtype)).mean()


def dice_per_image(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Hard Dice at probability 0.5 per image: B float32, the mean over C channels.

    logits, targets: B x C x H x W. A channel that is empty in both target and prediction
    scores 1.
    """
    predicted = logits > 0  # sigmoid(x) > 0.5
    truth = targets > 0.5
    overlap = (predicted & truth).sum(dim=(2, 3)).float()
    total = (predicted.sum(dim=(2, 3)) + truth.sum(dim=(2, 3))).float()
    dice = torch.where(total > 0, 2.0 * overlap / total.clamp(min=1.0), torch.ones_like(total))
    return dice.mean(dim=1)
