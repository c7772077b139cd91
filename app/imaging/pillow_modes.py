"""Map Pillow's image modes onto the two pixel layouts the service keeps: grey or RGB.

Alpha is dropped rather than composited: medical images carry no meaningful transparency, and
compositing onto a colour would change stored intensities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from app.errors import UnsupportedMediaType

_TO_RGB = frozenset({"RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"})
_GREY_WITH_ALPHA = frozenset({"LA", "La"})
_UINT16_MAX = 65535


def image_pixels(img: Image.Image) -> npt.NDArray[Any]:
    """Pixels of a loaded image: HxW uint8/uint16 (grey) or HxWx3 uint8 (RGB), writable copy.

    Raises UnsupportedMediaType for floating-point pixels, 32-bit integers outside 0..65535
    and colour spaces that have no faithful RGB form (LAB, HSV).
    """
    mode = img.mode
    if mode == "1":
        return np.array(img.convert("L"))  # 0/255, so it looks the same as it did
    if mode in ("L", "RGB"):
        return np.array(img)
    if mode in _GREY_WITH_ALPHA:
        return np.array(img.getchannel(0))
    if mode in ("P", "PA"):
        # Converting a palette with transparency straight to RGB warns; go through RGBA.
        has_alpha = mode == "PA" or "transparency" in img.info
        return np.array(img.convert("RGBA" if has_alpha else "RGB"))[..., :3].copy()
    if mode in _TO_RGB:
        return np.array(img.convert("RGB"))
    if mode.startswith("I;16"):
        return np.array(img).astype(np.uint16)  # also turns big-endian samples native
    if mode == "I":
        return _int32_to_uint16(np.array(img))
    raise UnsupportedMediaType(
        f"images with {mode} pixels are not supported; use 8-bit grey or RGB, or 16-bit grey"
    )


def _int32_to_uint16(values: npt.NDArray[Any]) -> npt.NDArray[np.uint16]:
    """32-bit integer grey (Pillow's "I") whose values fit 16 bits, as uint16."""
    if values.size and (values.min() < 0 or values.max() > _UINT16_MAX):
        raise UnsupportedMediaType(
            f"32-bit integer pixels in {values.min()}..{values.max()} are not supported; "
            "values must fit 0..65535"
        )
    return values.astype(np.uint16)
