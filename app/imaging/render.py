"""Turn decoded images and masks into what browsers and the method consume: PNG and RGB8.

Two 16-bit to 8-bit windows are used on purpose: thumbnails stretch the full min..max range
(every value stays distinguishable in a preview), while :func:`to_display_rgb8` clips the
0.5 % tails so that a few hot pixels do not wash out the anatomy.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from app.imaging.decode import DecodedImage

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DISPLAY_PERCENTILES = (0.5, 99.5)
_HISTOGRAM_BINS = 32


def encode_png(array: npt.NDArray[Any]) -> bytes:
    """Lossless PNG of an HxW (grey) or HxWx3 (RGB) array of dtype uint8 or uint16.

    Raises ValueError for any other shape or dtype.
    """
    if array.dtype not in (np.uint8, np.uint16) or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)
    ):
        raise ValueError(f"cannot encode {array.shape} {array.dtype} as PNG")
    if array.dtype == np.uint16 and array.ndim == 3:
        return _encode_rgb16(array)  # Pillow has no 16-bit colour mode
    return _save_png(Image.fromarray(np.ascontiguousarray(array)))


def mask_to_png(mask: npt.NDArray[np.uint8]) -> bytes:
    """8-bit grey PNG of an HxW uint8 class-index mask (values kept as they are)."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"a mask must be HxW uint8, got {mask.shape} {mask.dtype}")
    return encode_png(mask)


def make_thumbnail(image: DecodedImage, *, max_side: int = 256) -> bytes:
    """8-bit PNG (grey stays grey, RGB stays RGB) whose longer side is at most ``max_side``.

    The aspect ratio is kept and small images are not enlarged. 16-bit images are scaled
    linearly from their own minimum..maximum to 0..255.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    pixels = image.pixels
    if image.bit_depth == 16:
        pixels = _window(pixels, float(pixels.min()), float(pixels.max()))
    img = Image.fromarray(np.ascontiguousarray(pixels))
    scale = min(1.0, max_side / max(image.width, image.height))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size != img.size:
        # reducing_gap: a cheap integer reduction first, then a proper filter on the rest.
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _save_png(img)


def to_display_rgb8(image: DecodedImage) -> npt.NDArray[np.uint8]:
    """HxWx3 uint8 RGB copy of the image, grey repeated over the three channels.

    16-bit images are windowed linearly between their 0.5th and 99.5th percentiles (taken over
    all channels together, so colour balance is kept) and clipped to 0..255.
    """
    pixels = image.pixels
    if image.bit_depth == 16:
        low, high = np.percentile(pixels, _DISPLAY_PERCENTILES)
        pixels = _window(pixels, float(low), float(high))
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2).astype(np.uint8)
    return np.array(pixels, dtype=np.uint8)


def compute_statistics(image: DecodedImage) -> dict[str, Any]:
    """Per-channel summary of the stored values, JSON-serialisable.

    Returns ``{"dtype", "bit_depth", "width", "height", "histogram_bins": 32,
    "histogram_range": [0, 2**bit_depth], "saturated_fraction", "channels": [{"name",
    "min", "max", "mean", "std", "histogram"}]}``: channel names are "grey" or "red", "green",
    "blue"; the histogram has 32 equal bins over the native range of the dtype (bin ``i``
    counts values in ``[i * w, (i + 1) * w)``, ``w = 2**bit_depth / 32``); std is the
    population standard deviation; a pixel is saturated when any channel is at the top of
    the native range (255 or 65535).
    """
    pixels = image.pixels
    levels = 1 << image.bit_depth
    names = ("grey",) if pixels.ndim == 2 else ("red", "green", "blue")
    planes = [pixels] if pixels.ndim == 2 else [pixels[:, :, c] for c in range(3)]
    channels = [
        _channel_statistics(name, plane, levels) for name, plane in zip(names, planes, strict=True)
    ]
    at_top = pixels == levels - 1
    saturated = at_top if at_top.ndim == 2 else at_top.any(axis=2)
    return {
        "dtype": str(pixels.dtype),
        "bit_depth": image.bit_depth,
        "width": image.width,
        "height": image.height,
        "histogram_bins": _HISTOGRAM_BINS,
        "histogram_range": [0, levels],
        "saturated_fraction": float(saturated.mean()),
        "channels": channels,
    }


def _channel_statistics(name: str, plane: npt.NDArray[Any], levels: int) -> dict[str, Any]:
    """Statistics of one channel from its exact value counts (no float rounding of pixels)."""
    counts = np.bincount(plane.ravel(), minlength=levels).astype(np.float64)
    values = np.arange(levels, dtype=np.float64)
    total = counts.sum()
    mean = float(counts @ values / total)
    variance = float(counts @ (values - mean) ** 2 / total)
    present = np.flatnonzero(counts)
    histogram = counts.reshape(_HISTOGRAM_BINS, -1).sum(axis=1)
    return {
        "name": name,
        "min": float(present[0]),
        "max": float(present[-1]),
        "mean": mean,
        "std": variance**0.5,
        "histogram": [int(n) for n in histogram],
    }


def _window(pixels: npt.NDArray[Any], low: float, high: float) -> npt.NDArray[np.uint8]:
    """Map ``low..high`` linearly to 0..255, clipping outside; a flat window maps to 0."""
    span = max(high - low, 1.0)
    scaled = (pixels.astype(np.float32) - np.float32(low)) * np.float32(255.0 / span)
    window: npt.NDArray[np.uint8] = np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    return window


def _save_png(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def _encode_rgb16(array: npt.NDArray[Any]) -> bytes:
    """16-bit RGB PNG written directly: filter type 0 on every row, zlib-compressed."""
    height, width = array.shape[:2]
    rows = np.zeros((height, 1 + width * 6), dtype=np.uint8)  # leading 0 = no filter
    rows[:, 1:] = array.astype(">u2").view(np.uint8).reshape(height, width * 6)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
