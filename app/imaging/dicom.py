"""Read the pixels of a single-frame 2-D DICOM file (pydicom), as stored values.

Rescale slope/intercept and windowing are not applied: the stored values are kept so that
nothing is lost, and display windowing happens in :mod:`app.imaging.render`. Two changes make
every file read the same way: MONOCHROME1 is inverted (so brighter means more signal, as in
MONOCHROME2), and signed values are shifted by ``2 ** (BitsStored - 1)`` into unsigned ones,
which keeps their order.
"""

from __future__ import annotations

import io
import re
import struct
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder

from app.errors import InvalidInput, UnsupportedMediaType
from app.imaging.sniff import check_pixel_count

_GREY = frozenset({"MONOCHROME1", "MONOCHROME2"})
# pydicom converts the YBR colour spaces of compressed files to RGB while decoding.
_COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})
PARSE_ERRORS = (
    InvalidDicomError,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
    struct.error,
)


def said(error: Exception) -> str:
    """The parser's message without the in-memory object reprs (``<_io.BytesIO object at
    0x7f...>``) that pydicom puts in it: they mean nothing to whoever sent the file."""
    return (
        re.sub(r"\s*<[^<>]* object at 0x[0-9a-f]+>", "", str(error)).strip() or type(error).__name__
    )


def read_dicom(data: bytes, *, max_pixels: int) -> npt.NDArray[Any]:
    """Stored pixel values: HxW (grey) or HxWx3 (RGB), uint8 when BitsStored <= 8 else uint16.

    Raises InvalidInput (corrupt, no pixel data, several frames), PayloadTooLarge (Rows *
    Columns over ``max_pixels``, checked before any pixel is decoded), UnsupportedMediaType
    (photometric interpretation, bit depth or transfer syntax that cannot be decoded here).
    """
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        rows, columns, bits_stored, grey = _validate_header(ds)
    except PARSE_ERRORS as exc:
        raise InvalidInput(f"corrupt or truncated DICOM: {said(exc)}") from exc
    check_pixel_count(columns, rows, max_pixels)
    try:
        _check_decoder(ds)
    except PARSE_ERRORS as exc:
        raise InvalidInput(f"corrupt DICOM transfer syntax: {said(exc)}") from exc
    try:
        stored = np.asarray(ds.pixel_array)
    except (*PARSE_ERRORS, RuntimeError) as exc:
        raise InvalidInput(f"corrupt or truncated DICOM pixel data: {said(exc)}") from exc
    expected = (rows, columns) if grey else (rows, columns, 3)
    if stored.shape != expected:
        raise InvalidInput("only single-frame 2D DICOM is supported")
    return _to_unsigned(stored, bits_stored, ds.PhotometricInterpretation == "MONOCHROME1")


def _validate_header(ds: Dataset) -> tuple[int, int, int, bool]:
    """(rows, columns, bits stored, is grey) of a dataset this module can read."""
    if "PixelData" not in ds:
        raise InvalidInput("DICOM file has no pixel data (only integer PixelData is supported)")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise InvalidInput(
            f"only single-frame 2D DICOM is supported; this file has {frames} frames"
        )
    photometric = str(ds.PhotometricInterpretation)
    samples = int(ds.SamplesPerPixel)
    grey = photometric in _GREY and samples == 1
    if not grey and not (photometric in _COLOUR and samples == 3):
        raise UnsupportedMediaType(
            f"DICOM photometric interpretation {photometric} with {samples} samples per "
            "pixel is not supported; use MONOCHROME1, MONOCHROME2 or RGB"
        )
    bits_allocated = int(ds.BitsAllocated)
    bits_stored = int(ds.get("BitsStored", bits_allocated) or bits_allocated)
    if bits_allocated not in (8, 16) or not 1 <= bits_stored <= bits_allocated:
        raise UnsupportedMediaType(
            f"DICOM with {bits_allocated} bits allocated and {bits_stored} stored is not "
            "supported; use 8 or 16 bits"
        )
    return int(ds.Rows), int(ds.Columns), bits_stored, grey


def _check_decoder(ds: Dataset) -> None:
    """Refuse transfer syntaxes whose decoder plugin is absent, naming what it needs."""
    syntax = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedMediaType(
            f"DICOM transfer syntax {syntax.name} ({syntax}) is not supported"
        ) from exc
    if not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies)
        raise UnsupportedMediaType(
            f"DICOM transfer syntax {syntax.name} needs a decoder that is not installed ({needs})"
        )


def _to_unsigned(stored: npt.NDArray[Any], bits_stored: int, invert: bool) -> npt.NDArray[Any]:
    """Stored values as unsigned integers in ``0 .. 2**bits_stored - 1``, MONOCHROME1 inverted."""
    top = (1 << bits_stored) - 1
    values = stored.astype(np.int32)
    if np.issubdtype(stored.dtype, np.signedinteger):
        values = np.clip(values + (1 << (bits_stored - 1)), 0, top)
    else:
        # Bits above BitsStored may hold overlays in old files; they are not signal.
        values &= top
    if invert:
        values = top - values
    return values.astype(np.uint8 if bits_stored <= 8 else np.uint16)
