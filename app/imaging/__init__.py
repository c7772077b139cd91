"""Decoding and validating uploaded images and masks, and rendering them for display.

Everything here works on bytes and numpy arrays; storage and HTTP live elsewhere. Errors are
the service's own (:mod:`app.errors`): InvalidInput, PayloadTooLarge, UnsupportedMediaType.
"""

from app.imaging.decode import DecodedImage, decode_image
from app.imaging.masks import decode_mask
from app.imaging.render import (
    compute_statistics,
    encode_png,
    make_thumbnail,
    mask_to_png,
    to_display_rgb8,
)
from app.imaging.sniff import IMAGE_FORMATS, MASK_FORMATS, ImageFormat, sniff_format

__all__ = [
    "IMAGE_FORMATS",
    "MASK_FORMATS",
    "DecodedImage",
    "ImageFormat",
    "compute_statistics",
    "decode_image",
    "decode_mask",
    "encode_png",
    "make_thumbnail",
    "mask_to_png",
    "sniff_format",
    "to_display_rgb8",
]
