"""Decode an uploaded image into a numpy array the service and the method can trust.

Checks run cheapest first, so a hostile upload costs almost nothing: emptiness, byte size,
format from magic bytes, then the pixel count read from the header, and only then the pixels.
Pillow's own decompression-bomb check lives in ``Image.open``; it is bypassed by opening with
the format's plugin class directly, because the caller's ``max_pixels`` is the one limit
(Pillow still checks TIFF tiles while loading, which matters only for limits above its
default of about 89 megapixels).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from PIL import (
    BmpImagePlugin,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
)

from app.errors import InvalidInput, PayloadTooLarge
from app.imaging.dicom import read_dicom
from app.imaging.pillow_modes import image_pixels
from app.imaging.sniff import (
    IMAGE_FORMATS,
    ImageFormat,
    check_pixel_count,
    check_upload,
    format_label,
)

_OPENERS: dict[ImageFormat, Callable[[IO[bytes]], ImageFile.ImageFile]] = {
    "png": PngImagePlugin.PngImageFile,
    "jpeg": JpegImagePlugin.JpegImageFile,
    "tiff": TiffImagePlugin.TiffImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
}
# What Pillow raises on malformed or truncated data, while parsing headers or decoding.
_CORRUPT = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    zlib.error,
)
_EXIF_ORIENTATION = 0x0112
_DEEP_MODES = frozenset({"I", "F"})  # 32-bit integer and float: nothing is cut


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """Pixels of one 2-D image as stored (no windowing, no rescale).

    ``pixels`` is HxW (grey) or HxWx3 (RGB), dtype uint8 or uint16, C-contiguous and writable;
    ``width``/``height``/``channels``/``bit_depth`` describe it. ``format`` is the sniffed
    container: "png", "jpeg", "tiff", "bmp" or "dicom".
    """

    pixels: npt.NDArray[Any]
    format: str
    width: int
    height: int
    channels: int
    bit_depth: int

    def __post_init__(self) -> None:
        expected = (self.height, self.width) + ((3,) if self.channels == 3 else ())
        if self.pixels.shape != expected or self.pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"pixels {self.pixels.shape} {self.pixels.dtype} do not match "
                f"{self.width}x{self.height}x{self.channels}"
            )
        if self.bit_depth != self.pixels.dtype.itemsize * 8:
            raise ValueError(f"bit_depth {self.bit_depth} does not match {self.pixels.dtype}")

    @classmethod
    def from_pixels(cls, pixels: npt.NDArray[Any], fmt: str) -> DecodedImage:
        """Wrap an HxW or HxWx3 uint8/uint16 array, deriving the descriptive fields."""
        pixels = np.ascontiguousarray(pixels)
        height, width = pixels.shape[:2]
        return cls(
            pixels=pixels,
            format=fmt,
            width=int(width),
            height=int(height),
            channels=3 if pixels.ndim == 3 else 1,
            bit_depth=pixels.dtype.itemsize * 8,
        )


def decode_image(
    data: bytes, *, filename: str | None = None, max_bytes: int, max_pixels: int
) -> DecodedImage:
    """Decode PNG, JPEG, TIFF, BMP or single-frame DICOM bytes.

    Colour conversions: alpha (RGBA, LA, palette transparency) is dropped without compositing,
    palette and CMYK become RGB, 1-bit becomes 0/255 grey, 16-bit grey stays uint16. A JPEG or
    TIFF with an EXIF orientation is turned upright, as viewers show it. ``filename`` is used
    in messages only.

    Raises InvalidInput (empty, corrupt, truncated, multi-frame, 16-bit colour or alpha),
    PayloadTooLarge (over ``max_bytes`` or ``max_pixels``), UnsupportedMediaType (not an
    accepted format, or pixels of a kind that cannot be represented).
    """
    fmt = check_upload(data, max_bytes=max_bytes, accepted=IMAGE_FORMATS, filename=filename)
    if fmt == "dicom":
        pixels = read_dicom(data, max_pixels=max_pixels)
    else:
        pixels = _decode_raster(data, fmt, max_pixels)
    return DecodedImage.from_pixels(pixels, fmt)


def open_raster(data: bytes, fmt: ImageFormat) -> ImageFile.ImageFile:
    """Parse the header only (lazy); the image must be a single frame.

    Raises InvalidInput when the header is malformed, the file holds several frames, or its
    samples are deeper than Pillow can represent in that mode.
    """
    with translate_errors(fmt):
        img = _OPENERS[fmt](io.BytesIO(data))
        frames = int(getattr(img, "n_frames", 1))
    if frames > 1:
        raise InvalidInput(
            f"only single-frame images are supported; this {format_label(fmt)} has {frames} frames"
        )
    _check_precision(img, data, fmt)
    return img


def load_raster(img: ImageFile.ImageFile, fmt: ImageFormat) -> None:
    """Decode the pixels of an image opened by :func:`open_raster`."""
    with translate_errors(fmt):
        img.load()


@contextmanager
def translate_errors(fmt: ImageFormat) -> Iterator[None]:
    """Turn Pillow's errors on bad data into InvalidInput / PayloadTooLarge."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(str(exc)) from exc
    except _CORRUPT as exc:
        raise InvalidInput(f"corrupt or truncated {format_label(fmt)}: {exc}") from exc


def _decode_raster(data: bytes, fmt: ImageFormat, max_pixels: int) -> npt.NDArray[Any]:
    img = open_raster(data, fmt)
    check_pixel_count(img.width, img.height, max_pixels)
    load_raster(img, fmt)
    return image_pixels(_upright(img))


def _check_precision(img: ImageFile.ImageFile, data: bytes, fmt: ImageFormat) -> None:
    """Refuse samples deeper than 8 bits that Pillow would read as 8 bits (header only).

    Pillow has 16-bit modes for grey only; 16-bit colour or grey-with-alpha is silently cut
    to its high byte, which would corrupt masks and lose image detail.
    """
    if img.mode in _DEEP_MODES or img.mode.startswith("I;16"):
        return
    if _stored_bits(img, data, fmt) > 8:
        raise InvalidInput(
            f"16-bit colour or alpha {format_label(fmt)} images are not supported; "
            "convert to 8-bit, or to 16-bit greyscale without alpha"
        )


def _stored_bits(img: ImageFile.ImageFile, data: bytes, fmt: ImageFormat) -> int:
    """The largest bits per sample the file declares."""
    if fmt == "png":
        return data[24]  # IHDR bit depth, right after the signature and chunk header
    if isinstance(img, TiffImagePlugin.TiffImageFile):
        bits = img.tag_v2.get(TiffImagePlugin.BITSPERSAMPLE, 8)
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 8


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, as browsers and viewers do; unreadable EXIF is ignored."""
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except _CORRUPT:
        return img
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(img)
    return img
