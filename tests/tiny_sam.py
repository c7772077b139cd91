"""A tiny randomly initialised SAM saved as a real checkpoint file, and a real image to run it
on: what the SAM proposal tests share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from samdsk.imageio import read_image
from samdsk.proposals.weights import build_sam_vit_tiny
from tests.shared_data import shared_data


def save_tiny_sam(
    path: Path,
    *,
    seed: int = 0,
    logit_scale: float = 1.0,
    bias_std: float = 0.0,
    predicted_iou: float | None = None,
) -> Path:
    """Write a vit_tiny state dict to ``path``. Random weights draw near-empty masks of one
    stability; scaling the mask hypernetworks' output layer (``logit_scale``) varies their
    area and stability, and random output biases (``bias_std``) make them non-empty.
    ``predicted_iou``: every mask's predicted IoU, so that masks pass the paper's thresholds."""
    torch.manual_seed(seed)
    model = build_sam_vit_tiny()
    with torch.no_grad():
        if predicted_iou is not None:
            last = model.mask_decoder.iou_prediction_head.layers[-1]
            last.weight.zero_()
            last.bias.fill_(predicted_iou)
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            last = mlp.layers[-1]
            last.weight.mul_(logit_scale)
            if bias_std > 0.0:
                last.bias.normal_(0.0, bias_std)
            elif logit_scale != 1.0:
                last.bias.zero_()
    torch.save(model.state_dict(), path)
    return path


def kvasir_image(width: int) -> np.ndarray:
    """The first Kvasir-SEG image, resized to ``width`` pixels wide (skips without the data)."""
    folder = shared_data("kvasir_seg", "images")
    full = Image.fromarray(read_image(sorted(folder.glob("*.jpg"))[0]))
    return np.asarray(full.resize((width, round(width * full.height / full.width))))
