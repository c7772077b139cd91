"""Inference: per-class probability maps at each image's original size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from samdsk.errors import ConfigError, ShapeError
from samdsk.model.config import ModelConfig, check_image
from samdsk.model.data import resize_image, to_model_input, uint8_to_float
from samdsk.model.precision import autocast_bf16


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless module)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def forward_logits(model: torch.nn.Module, images: np.ndarray, config: ModelConfig) -> torch.Tensor:
    """Logits of N x S x S x 3 uint8 images already at ``config.input_size``.

    Returns N x C x S x S float32 on the model's device. The caller sets eval mode and
    disables gradients; bf16 autocast where ``autocast_bf16`` says (CUDA with ``config.amp``,
    a CPU with native bf16 and ``config.cpu_bf16``).
    """
    device = model_device(model)
    inputs = to_model_input(uint8_to_float(images).to(device, non_blocking=True))
    inputs = inputs.contiguous(memory_format=torch.channels_last)  # faster convolutions
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16(config, device)):
        logits = model(inputs)
    if not isinstance(logits, torch.Tensor) or logits.shape[1] != config.num_classes:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ShapeError(f"model output {got} does not have num_classes={config.num_classes}")
    return logits.float()


def predict_probabilities(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    config: ModelConfig,
    *,
    batch_size: int = 8,
    flip_tta: bool = False,
) -> list[np.ndarray]:
    """Per-class foreground probabilities for each image.

    images: H x W x 3 uint8 RGB, any sizes. Each is resized to ``config.input_size``; the
    logits are resized back bilinearly before the sigmoid. Returns one C x H x W float32 array
    in [0, 1] per image, at that image's original H x W. The model's train/eval mode is kept.
    Runs with torch's current thread count; on a shared CPU, callers wrap a whole prediction
    job in ``threads.cpu_threads_for``.
    flip_tta: average the logits of the image and its horizontal and vertical mirror images
    (three forward passes): steadier maps where the model is unsure, so that match scores
    rank images better.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    for image in images:
        check_image(image)
    was_training = model.training
    model.eval()
    results: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                chunk = images[start : start + batch_size]
                resized = np.stack([resize_image(image, config.input_size) for image in chunk])
                if flip_tta:
                    logits = _tta_logits(model, resized, config)
                else:
                    logits = forward_logits(model, resized, config)
                for i, image in enumerate(chunk):
                    full = F.interpolate(
                        logits[i : i + 1],
                        size=image.shape[:2],
                        mode="bilinear",
                        align_corners=False,
                    )
                    results.append(torch.sigmoid(full[0]).cpu().numpy().astype(np.float32))
    finally:
        model.train(was_training)
    return results


def _tta_logits(model: torch.nn.Module, images: np.ndarray, config: ModelConfig) -> torch.Tensor:
    """Mean logits over identity, left-right and up-down flips (N x S x S x 3 -> N x C x S x S)."""
    total = forward_logits(model, images, config)
    for image_axis, logit_axis in ((2, 3), (1, 2)):  # width, then height
        mirrored = np.ascontiguousarray(np.flip(images, axis=image_axis))
        total += forward_logits(model, mirrored, config).flip(logit_axis)
    return total / 3.0
