"""Argument types of the method commands: numbers in range, arm letters, knowledge, maps.

Each raises ``argparse.ArgumentTypeError`` with a message that says what was expected, so
argparse answers a bad value with usage and exit status 2 before any work starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from samdsk.errors import ConfigError, ShapeError
from samdsk.knowledge import PRESETS, ClassKnowledge, get_preset


def parse_knowledge(text: str) -> ClassKnowledge:
    """A preset name, or ``min_regions:max_regions:min_area:max_area`` (e.g. ``1:3:0.001:0.9``)."""
    if ":" not in text:
        try:
            return get_preset(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parts = text.split(":")
    try:
        if len(parts) != 4:
            raise ValueError("expected four values")
        return ClassKnowledge(int(parts[0]), int(parts[1]), float(parts[2]), float(parts[3]))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"invalid knowledge {text!r} ({error}); use a preset {sorted(PRESETS)} or "
            "min_regions:max_regions:min_area:max_area"
        ) from None


def read_probability(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A C x H x W float32 map in [0, 1] from an 8-bit PNG (/255) or a .npy (H x W or
    C x H x W, values in [0, 1]), resized bilinearly to ``shape`` (H, W) if needed."""
    if path.suffix.lower() == ".npy":
        try:
            values: np.ndarray = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ShapeError(f"cannot read {path}: {error}") from error
        values = values[None] if values.ndim == 2 else values
        if values.ndim != 3 or not np.issubdtype(values.dtype, np.number):
            raise ShapeError(f"{path} must hold an H x W or C x H x W array of numbers")
        maps = values.astype(np.float32)
        if not np.all(np.isfinite(maps)) or maps.min() < 0.0 or maps.max() > 1.0:
            raise ShapeError(f"{path} must hold probabilities in [0, 1]")
    else:
        from samdsk.imageio import read_image

        maps = read_image(path)[..., 0][None].astype(np.float32) / 255.0
    if maps.shape[1:] != shape:
        maps = np.stack(
            [
                np.asarray(Image.fromarray(m).resize(shape[::-1], Image.Resampling.BILINEAR))
                for m in maps
            ]
        ).clip(0.0, 1.0)
    return maps


def positive(text: str) -> int:
    value = number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return int(value)


def fraction(text: str) -> float:
    value = number(text, float)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1]; got {text}")
    return float(value)


def unit(text: str) -> float:
    value = number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1]; got {text}")
    return float(value)


def share(text: str) -> float:
    value = number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a share in [0, 1); got {text}")
    return float(value)


def arm_list(text: str) -> tuple[str, ...]:
    """'a,d' or 'A, C, D' -> ('A', 'D'), in the order the experiment runs them."""
    letters = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = sorted(letters - set("ABCDHP"))
    if unknown or not letters:
        raise argparse.ArgumentTypeError(f"arms are letters among A, B, C, D, H, P; got {text!r}")
    return tuple(sorted(letters))


def number(text: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
