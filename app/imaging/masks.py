"""Decode an uploaded segmentation mask into class indices, refusing anything ambiguous.

Two encodings are accepted: index form (0 = background, 1..K = classes) and, for a single
class only, the common 0/255 form. With several classes 255 is refused, because it could mean
"foreground" or "class 255" and guessing would silently corrupt the labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from app.errors import InvalidInput
from app.imaging.decode import load_raster, open_raster
from app.imaging.sniff import MASK_FORMATS, check_upload

_MAX_CLASSES = 254
_SHOWN_VALUES = 5


def decode_mask(
    data: bytes, *, width: int, height: int, num_classes: int, max_bytes: int
) -> npt.NDArray[np.uint8]:
    """Decode a PNG, TIFF or BMP mask for an image of ``width`` x ``height``.

    Returns an HxW uint8 array of class indices in ``0..num_classes``. Accepted pixel kinds:
    8- or 16-bit grey, 1-bit, palette (the palette indices are the values) and RGB/RGBA whose
    red, green and blue channels are equal (alpha ignored).

    Raises InvalidInput (empty, corrupt, wrong size, several channels, values outside the
    allowed set), PayloadTooLarge (over ``max_bytes``), UnsupportedMediaType (not PNG, TIFF or
    BMP).
    """
    if not 1 <= num_classes <= _MAX_CLASSES:
        raise InvalidInput(f"num_classes must be between 1 and {_MAX_CLASSES}, got {num_classes}")
    fmt = check_upload(data, max_bytes=max_bytes, accepted=MASK_FORMATS, what="mask")
    img = open_raster(data, fmt)
    # The size check doubles as the decompression-bomb guard: nothing larger is decoded.
    if img.size != (width, height):
        raise InvalidInput(
            f"mask is {img.width}x{img.height} but the image is {width}x{height} (width x height)"
        )
    load_raster(img, fmt)
    return _class_indices(_mask_values(img), num_classes)


def _mask_values(img: Image.Image) -> npt.NDArray[Any]:
    """The mask's single channel as an HxW integer array (values not yet validated)."""
    mode = img.mode
    if mode == "1":
        return np.array(img, dtype=np.uint8)  # False/True -> 0/1
    if mode in ("L", "P", "I") or mode.startswith("I;16"):
        return np.array(img)
    if mode == "LA":
        return np.array(img.getchannel(0))
    if mode in ("RGB", "RGBA"):
        rgb = np.array(img)
        red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        if not (np.array_equal(red, green) and np.array_equal(green, blue)):
            raise InvalidInput(
                "mask must be single-channel: its red, green and blue channels differ"
            )
        return red
    raise InvalidInput(f"mask must be single-channel; got {mode} pixels")


def _class_indices(values: npt.NDArray[Any], num_classes: int) -> npt.NDArray[np.uint8]:
    """Validate the values and map them to class indices (HxW uint8)."""
    present = _present_values(values)
    allowed = set(range(num_classes + 1))
    indices: npt.NDArray[np.uint8]
    if present <= allowed:
        indices = values.astype(np.uint8)
        return indices
    if num_classes == 1 and present <= {0, 255}:
        indices = (values == 255).astype(np.uint8)
        return indices
    bad = sorted(present - allowed - ({255} if num_classes == 1 else set()))
    if not bad:
        raise InvalidInput("mask mixes the values 1 and 255; use either 0/1 or 0/255")
    shown = ", ".join(str(v) for v in bad[:_SHOWN_VALUES])
    if len(bad) > _SHOWN_VALUES:
        shown += f" and {len(bad) - _SHOWN_VALUES} more"
    if num_classes == 1:
        expected = "0/1 or 0/255 (0 = background)"
    else:
        expected = (
            f"class indices 0..{num_classes} (0 = background; 255 is accepted as foreground "
            "only when there is one class)"
        )
    raise InvalidInput(f"mask values must be {expected}; found {shown}")


def _present_values(values: npt.NDArray[Any]) -> set[int]:
    """The distinct values of an integer array; a counting pass for 8/16-bit unsigned data."""
    if values.dtype in (np.uint8, np.uint16):
        counts = np.bincount(values.ravel(), minlength=1)
        return {int(v) for v in np.flatnonzero(counts)}
    return {int(v) for v in np.unique(values)}
