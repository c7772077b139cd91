"""Recognise an upload's format from its magic bytes and enforce the size limits.

The file name never decides the format: a browser or a user can name anything ``.png``. The
name only makes the error message easier to act on.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

ImageFormat = Literal["png", "jpeg", "tiff", "bmp", "dicom"]

IMAGE_FORMATS: tuple[ImageFormat, ...] = ("png", "jpeg", "tiff", "bmp", "dicom")
# Lossy JPEG would blur class boundaries into intermediate values, and DICOM masks (SEG) are a
# different object model, so masks are limited to the lossless raster formats.
MASK_FORMATS: tuple[ImageFormat, ...] = ("png", "tiff", "bmp")

_MAGIC: tuple[tuple[bytes, ImageFormat], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
)
# BMP's magic is only "BM", so the size of the header that follows must be a known one too.
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_OTHER_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)


def format_label(fmt: ImageFormat) -> str:
    """The format's name as users know it ("PNG", "DICOM")."""
    return fmt.upper()


def sniff_format(data: bytes) -> ImageFormat | None:
    """The format that ``data`` starts like, or None when it is none of the accepted ones."""
    # DICOM first: its 128-byte preamble may itself hold a TIFF header (dual-format files).
    if data[128:132] == b"DICM":
        return "dicom"
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES:
        return "bmp"
    return None


def check_upload(
    data: bytes,
    *,
    max_bytes: int,
    accepted: tuple[ImageFormat, ...],
    what: str = "image",
    filename: str | None = None,
) -> ImageFormat:
    """Check emptiness, byte size and format, in that order; return the sniffed format.

    Raises InvalidInput (empty), PayloadTooLarge (over ``max_bytes``) or UnsupportedMediaType
    (content is none of ``accepted``; the message names the accepted formats).
    """
    if not data:
        raise InvalidInput("empty file")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"file is {len(data)} bytes, limit is {max_bytes} bytes")
    fmt = sniff_format(data)
    if fmt is not None and fmt in accepted:
        return fmt
    names = ", ".join(format_label(f) for f in accepted)
    prefix = f"{PurePath(filename).name}: " if filename else ""
    found = format_label(fmt) if fmt is not None else _describe_unknown(data)
    raise UnsupportedMediaType(
        f"{prefix}unsupported {what} format ({found}); accepted formats: {names}"
    )


def check_pixel_count(width: int, height: int, max_pixels: int) -> None:
    """Raise PayloadTooLarge when ``width * height`` exceeds ``max_pixels``.

    Raises InvalidInput when either side is zero.
    """
    if width < 1 or height < 1:
        raise InvalidInput(f"image has no pixels ({width}x{height})")
    pixels = width * height
    if pixels > max_pixels:
        raise PayloadTooLarge(
            f"image has {pixels} pixels, limit is {max_pixels} ({width}x{height})"
        )


def _describe_unknown(data: bytes) -> str:
    """A short guess at what an unrecognised upload is, for the error message."""
    for magic, kind in _OTHER_KINDS:
        if data.startswith(magic):
            return f"looks like {kind}"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "looks like WebP"
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The cut at 512 bytes may split a multi-byte character; anything earlier is binary.
        if exc.start < len(head) - 3:
            return "content not recognised"
        text = head[: exc.start].decode("utf-8")
    if all(ch.isprintable() or ch.isspace() for ch in text):
        return "looks like text"
    return "content not recognised"
