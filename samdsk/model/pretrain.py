"""Self-supervised pretraining on unlabelled images: restore corrupted images.

No ImageNet weights can be assumed, and a clinic's unlabelled pool is large beside its few
labels, so the model's architecture first learns the pool's appearance by restoring its images
(as Models Genesis, Zhou et al. 2019, does for medical images): the input is the image with a
random intensity curve, locally shuffled pixels and blocks painted over with noise; the
target is the image itself. Painted-over blocks can only be restored from their context, which
is what a segmentation model needs to learn; the intensity curve makes the network learn
what tissue looks like rather than copy pixels through its skip connections.

The pretrained network is saved as a state-dict file; its encoder is what
``ModelConfig.encoder_weights_path`` loads (``samdsk.model.factory.load_encoder_weights``), the
same way a user's ImageNet encoder weights are loaded.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from samdsk.errors import ConfigError
from samdsk.model.augment import random_affine, warp_images
from samdsk.model.config import ModelConfig
from samdsk.model.data import permutation_stream, resize_image, to_model_input, uint8_to_float
from samdsk.model.factory import build_model, resolve_device
from samdsk.model.precision import autocast_bf16, precision_name
from samdsk.model.threads import cpu_threads_for
from samdsk.model.train import optimizer_and_schedule

logger = logging.getLogger(__name__)

RGB_CHANNELS = 3  # the restoration head predicts the three colour channels
BLOCK_COVER = (0.25, 0.5)  # share of each image painted over, drawn per image
BLOCK_SIDE = (1 / 16, 1 / 4)  # side of one painted block, as a share of the image's side
SHUFFLE_SIDE = 4  # pixels of one locally shuffled window
SHUFFLE_SHARE = 0.5  # share of the images whose pixels are shuffled locally
GAMMA = (0.5, 2.0)  # the intensity curve x -> x ** gamma, gamma drawn log-uniformly

Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class PretrainResult:
    """Where the pretrained weights went and how the restoration went.

    first_loss, final_loss: mean restoration loss over the first and the last tenth of steps.
    """

    path: Path
    images: int
    steps: int
    first_loss: float
    final_loss: float
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "images": self.images,
            "steps": self.steps,
            "first_loss": self.first_loss,
            "final_loss": self.final_loss,
            "seconds": self.seconds,
        }


def pretrain_by_restoration(
    images: Sequence[np.ndarray],
    config: ModelConfig,
    path: Path,
    *,
    steps: int,
    progress: Progress | None = None,
    show_progress_bar: bool = False,
) -> PretrainResult:
    """Train ``config``'s architecture for ``steps`` steps to restore corrupted ``images``
    (H x W x 3 uint8, any sizes) and save its weights to ``path``.

    Batches, learning rate, precision, seed and CPU threads follow ``config`` as in
    ``train_model``; starts from ``config.encoder_weights_path`` when given. The file holds
    the whole network's state dict (plain tensors); load its encoder with
    ``replace(config, encoder_weights_path=str(path))``.
    """
    if steps < 1:
        raise ConfigError(f"pretraining steps must be >= 1; got {steps}")
    if not images:
        raise ConfigError("pretraining needs at least one image")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    resized = np.stack([resize_image(image, config.input_size) for image in images])
    with cpu_threads_for(device, pinned=config.cpu_threads):
        model = build_model(replace(config, num_classes=RGB_CHANNELS)).to(device)
        model = model.to(memory_format=torch.channels_last)
        logger.info(
            "pretraining %s/%s by restoration on %s (%s): %d images, %d steps",
            config.arch,
            config.encoder,
            device,
            precision_name(config, device),
            len(images),
            steps,
        )
        losses = _restore(model, resized, config, device, steps, progress, show_progress_bar)
    _save_state(model, path)
    tenth = max(1, steps // 10)
    result = PretrainResult(
        path,
        len(images),
        steps,
        float(np.mean(losses[:tenth])),
        float(np.mean(losses[-tenth:])),
        time.perf_counter() - started,
    )
    logger.info(
        "pretrained in %.1f s: restoration loss %.4f -> %.4f; weights in %s",
        result.seconds,
        result.first_loss,
        result.final_loss,
        path,
    )
    return result


def _restore(
    model: torch.nn.Module,
    images: np.ndarray,
    config: ModelConfig,
    device: torch.device,
    steps: int,
    progress: Progress | None,
    show_progress_bar: bool,
) -> list[float]:
    optimizer, schedule = optimizer_and_schedule(model, config, steps)
    generator = torch.Generator().manual_seed(config.seed)
    order = permutation_stream(np.arange(len(images)), steps * config.batch_size, generator)
    bf16 = autocast_bf16(config, device)
    losses: list[float] = []
    model.train()
    with tqdm(total=steps, disable=not show_progress_bar, desc="pretraining") as bar:
        for step in range(steps):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            target = geometric_views(uint8_to_float(images[batch]), generator)
            corrupted = corrupt(target, generator)
            inputs = (
                to_model_input(corrupted).to(device).contiguous(memory_format=torch.channels_last)
            )
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                restored = torch.sigmoid(model(inputs).float())
            loss = torch.nn.functional.mse_loss(restored, target.to(device))
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.item()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if progress is not None:
                progress(step + 1, steps, losses[-1])
    return losses


def geometric_views(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """B x 3 x S x S images in [0, 1] under the training's random flips, rotation and zoom, so
    the network does not learn one fixed view of each image."""
    return warp_images(images, random_affine(images.shape[0], generator)).clamp(0.0, 1.0)


def corrupt(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The corrupted input for B x 3 x S x S images in [0, 1]: an intensity curve, local pixel
    shuffling on some images, and blocks painted over with noise (same shape, in [0, 1])."""
    batch = images.shape[0]
    low, high = np.log(GAMMA[0]), np.log(GAMMA[1])
    gamma = torch.exp(low + (high - low) * torch.rand(batch, generator=generator))
    corrupted = images.clamp_min(1e-6) ** gamma[:, None, None, None]
    shuffled = torch.rand(batch, generator=generator) < SHUFFLE_SHARE
    if shuffled.any():
        corrupted[shuffled] = shuffle_locally(corrupted[shuffled], generator)
    painted = block_mask(batch, images.shape[-2], images.shape[-1], generator)
    noise = torch.rand(corrupted.shape, generator=generator)
    return torch.where(painted[:, None], noise, corrupted)


def shuffle_locally(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Permute the pixels inside each ``SHUFFLE_SIDE`` x ``SHUFFLE_SIDE`` window (one random
    permutation per image): local texture is lost, the image's layout is kept."""
    batch, channels, height, width = images.shape
    side = SHUFFLE_SIDE
    rows, cols = height // side * side, width // side * side
    windows = images[:, :, :rows, :cols].reshape(batch, channels, rows // side, side, -1, side)
    windows = windows.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, rows // side, -1, side**2)
    permutation = torch.stack([torch.randperm(side**2, generator=generator) for _ in range(batch)])
    windows = windows.gather(-1, permutation[:, None, None, None, :].expand_as(windows))
    restored = windows.reshape(batch, channels, rows // side, cols // side, side, side)
    restored = restored.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, rows, cols)
    out = images.clone()
    out[:, :, :rows, :cols] = restored
    return out


def block_mask(batch: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """B x H x W bool: random rectangles until each image's drawn share of pixels is covered."""
    mask = torch.zeros(batch, height, width, dtype=torch.bool)
    for index in range(batch):
        share = BLOCK_COVER[0] + (BLOCK_COVER[1] - BLOCK_COVER[0]) * _uniform(generator)
        while mask[index].float().mean() < share:
            block_h = max(1, round(height * _side(generator)))
            block_w = max(1, round(width * _side(generator)))
            top = int(torch.randint(0, height - block_h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - block_w + 1, (1,), generator=generator))
            mask[index, top : top + block_h, left : left + block_w] = True
    return mask


def _side(generator: torch.Generator) -> float:
    return BLOCK_SIDE[0] + (BLOCK_SIDE[1] - BLOCK_SIDE[0]) * _uniform(generator)


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand(1, generator=generator))


def _save_state(model: torch.nn.Module, path: Path) -> None:
    """Write the state dict atomically (a partly written file is never left at ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)
