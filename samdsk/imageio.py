"""Reading images and masks from files into the arrays the library works on.

Images come back as HxWx3 uint8 RGB whatever the file holds (grey, palette, alpha, 16-bit,
float); masks come back as HxW bool. ``hash_array`` names an image by its content, so caches
survive renames and re-uploads of the same pixels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from samdsk.errors import SamdskError, ShapeError

ImageSource = str | Path | BinaryIO


class ImageReadError(SamdskError, ValueError):
    """A file that is missing or not an image Pillow can decode."""


def read_image(source: ImageSource) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB.

    Grey images are repeated into three channels, alpha is dropped, and data deeper than
    8 bits (16-bit or 32-bit integers, floats) is stretched linearly from its own minimum and
    maximum to [0, 255]: medical images often use only 10-12 of 16 bits, and a fixed divide
    would leave them nearly black.
    """
    with _open(source) as pil:
        return to_rgb_uint8(_pil_to_array(pil))


def read_mask(source: ImageSource) -> np.ndarray:
    """Read a mask file as HxW bool.

    0/1 label masks count every nonzero pixel; 8-bit masks are cut at 127, so 0/255 masks that
    went through JPEG compression stay exact; deeper or float masks are cut at half their
    maximum. Colour masks count their brightest channel.
    """
    with _open(source) as pil:
        if pil.mode in ("1", "P"):
            return np.asarray(pil.convert("L")) > 0
        array = _pil_to_array(pil)
    if array.ndim == 3:
        array = array[..., :3].max(axis=2)
    return _threshold_mask(array)


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Convert an HxW or HxWxC (C in 1, 3, 4) array of any numeric dtype to HxWx3 uint8 RGB."""
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., :3]
    elif array.ndim != 2:
        raise ShapeError(f"expected an HxW or HxWxC image with C in 1, 3, 4; got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ShapeError(f"image has no pixels: shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = _stretch_to_uint8(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def hash_array(image: np.ndarray) -> str:
    """Return the sha256 hex digest of an array's shape, dtype and pixel bytes."""
    contiguous = np.ascontiguousarray(image)
    digest = hashlib.sha256()
    digest.update(f"{contiguous.shape}|{contiguous.dtype.str}|".encode())
    digest.update(contiguous.tobytes())
    return digest.hexdigest()


def _threshold_mask(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.copy()
    if array.size == 0:
        raise ShapeError(f"mask has no pixels: shape {array.shape}")
    top = float(array.max())
    if np.issubdtype(array.dtype, np.integer) and top <= 1:
        return array > 0
    if array.dtype == np.uint8:
        return array > 127
    return array > (0.5 if top <= 1 else top / 2)


def _open(source: ImageSource) -> Image.Image:
    try:
        pil = Image.open(source)
        pil.load()
    except FileNotFoundError as error:
        raise ImageReadError(f"image file not found: {source}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"cannot decode image {_name(source)}: {error}") from error
    # Camera JPEGs may store their rotation as EXIF metadata; apply it so pixels match masks.
    transposed = ImageOps.exif_transpose(pil)
    if transposed is not pil:
        pil.close()
    return transposed


def _pil_to_array(pil: Image.Image) -> np.ndarray:
    if pil.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "LA", "La"):
        pil = pil.convert("RGBA" if "A" in pil.mode or "a" in pil.mode else "RGB")
    if pil.mode.startswith("I;16"):
        return np.asarray(pil).astype(np.uint16)
    return np.asarray(pil)


def _stretch_to_uint8(array: np.ndarray) -> np.ndarray:
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(array.shape, dtype=np.uint8)
    low = float(values[finite].min())
    high = float(values[finite].max())
    values = np.where(finite, values, low)
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    scaled = (values - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _name(source: ImageSource) -> str:
    return str(source) if isinstance(source, str | Path) else getattr(source, "name", "<stream>")
