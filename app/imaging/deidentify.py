"""An uploaded image without the metadata that may identify a patient, for export.

Pixels are kept exactly; only what rides along with them goes:
- DICOM: see :mod:`app.imaging.dicom_deidentify`.
- PNG: text, EXIF and time chunks (``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``, ``tIME``) and any
  chunk not needed to draw the image; the compressed pixel data is copied byte for byte.
- JPEG: EXIF and XMP (APP1), comments (COM) and the other application segments, except JFIF
  (APP0), the ICC profile (APP2) and Adobe's colour transform (APP14); the entropy-coded data
  is copied byte for byte, so nothing is re-compressed.
- TIFF: its tags may hold anything (descriptions, dates, makers' notes), so the pixels as the
  service reads them are written to a new lossless TIFF.
- BMP: has no metadata; copied.
An EXIF orientation is kept, alone, in PNG and JPEG: the stored masks are drawn on the image
turned upright, so dropping it would misplace every mask.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy.typing as npt
from PIL import Image

from app.errors import InvalidInput
from app.imaging.decode import decode_image, open_raster
from app.imaging.dicom_deidentify import deidentify_dicom

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that only describe how to draw the pixels (PNG 3rd edition, sections 11.2 and 11.3).
_PNG_KEPT = frozenset({
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"pHYs", b"bKGD", b"cICP",
})  # fmt: skip
# Application segments kept, by marker and the signature their data must start with: JFIF
# (not its JFXX thumbnail extension), an ICC profile (not FlashPix), Adobe's colour transform.
_JPEG_KEPT_APP = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_ORIENTATION = 0x0112


def deidentify_image(data: bytes, fmt: str, *, uid_key: bytes, max_pixels: int) -> bytes:
    """``data`` (an uploaded image of format ``fmt``) without identifying metadata. Raises
    InvalidInput when a file cannot be read, or declares text burned into its pixels."""
    if fmt == "dicom":
        return deidentify_dicom(data, uid_key=uid_key)
    if fmt == "png":
        return _strip_png(data, _orientation(data, fmt))
    if fmt == "jpeg":
        return _strip_jpeg(data, _orientation(data, fmt))
    if fmt == "tiff":
        pixels = decode_image(data, max_bytes=len(data) + 1, max_pixels=max_pixels).pixels
        return _lossless_tiff(pixels)
    return data


def _orientation(data: bytes, fmt: str) -> int:
    try:
        value = open_raster(data, "png" if fmt == "png" else "jpeg").getexif().get(_ORIENTATION)
    except (InvalidInput, OSError, SyntaxError, ValueError, struct.error):
        return 1  # unreadable EXIF is ignored when decoding too
    return value if value in (2, 3, 4, 5, 6, 7, 8) else 1


def _exif_with_orientation(orientation: int) -> bytes:
    """A TIFF-structured EXIF block holding only the orientation (no ``Exif`` prefix)."""
    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    return exif.tobytes()[len(b"Exif\x00\x00") :]


def _strip_png(data: bytes, orientation: int) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise InvalidInput("corrupt PNG: no PNG signature")
    out = [_PNG_SIGNATURE]
    exif_due = orientation != 1
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if kind in _PNG_KEPT:
            if kind == b"IDAT" and exif_due:  # eXIf must come before the image data
                out.append(_png_chunk(b"eXIf", _exif_with_orientation(orientation)))
                exif_due = False
            out.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    return b"".join(out)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _strip_jpeg(data: bytes, orientation: int) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise InvalidInput("corrupt JPEG: no start-of-image marker")
    out = [data[:2]]
    if orientation != 1:
        exif = b"Exif\x00\x00" + _exif_with_orientation(orientation)
        out.append(b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif)
    position = 2
    while position + 2 <= len(data):
        if data[position] != 0xFF:
            raise InvalidInput("corrupt JPEG: a segment does not start with a marker")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0xD9:  # end of image; anything after it is not part of the image
            out.append(data[position : position + 2])
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out.append(data[position : position + 2])
            position += 2
            continue
        if position + 4 > len(data):
            raise InvalidInput("corrupt JPEG: a segment is cut off")
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if length < 2 or end > len(data):
            raise InvalidInput("corrupt JPEG: a segment's length does not fit the file")
        if marker == 0xFE or (0xE0 <= marker <= 0xEF and not _kept_app(marker, data, position)):
            position = end  # a comment or an application segment that may identify
            continue
        out.append(data[position:end])
        position = end
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            scan_end = _scan_end(data, position)
            out.append(data[position:scan_end])
            position = scan_end
    return b"".join(out)


def _kept_app(marker: int, data: bytes, position: int) -> bool:
    signature = _JPEG_KEPT_APP.get(marker)
    return signature is not None and data.startswith(signature, position + 4)


def _scan_end(data: bytes, position: int) -> int:
    """Where the entropy-coded data starting at ``position`` ends: the first 0xFF that is
    neither a stuffed byte (FF00) nor a restart marker (FFD0-FFD7)."""
    while True:
        found = data.find(b"\xff", position)
        if found < 0 or found + 1 >= len(data):
            return len(data)
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            position = found + 2
            continue
        return found


def _lossless_tiff(pixels: npt.NDArray[Any]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="TIFF", compression="tiff_adobe_deflate")
    return out.getvalue()
