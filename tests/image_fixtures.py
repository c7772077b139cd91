"""Builders of image and mask files, good and bad, made in memory for the imaging tests.

Files Pillow cannot write (16-bit colour PNG and TIFF, a PNG claiming 30000x30000 pixels)
are assembled byte by byte from their specifications.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    """``img`` saved by Pillow in ``fmt`` ("PNG", "JPEG", "TIFF", "BMP")."""
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def array_file(array: npt.NDArray[Any], fmt: str = "PNG", **options: Any) -> bytes:
    """An array (HxW uint8/uint16, HxWx3 or HxWx4 uint8) saved by Pillow in ``fmt``."""
    return encode(Image.fromarray(array), fmt, **options)


def palette_png(indices: npt.NDArray[np.uint8], *, transparent_index: int | None = None) -> bytes:
    """Palette PNG: palette entry ``i`` is the colour (i, 2i, 3i) modulo 256."""
    img = Image.fromarray(indices, mode="L").convert("P")
    img.putpalette([(i * k) % 256 for i in range(256) for k in (1, 2, 3)])
    if transparent_index is None:
        return encode(img, "PNG")
    return encode(img, "PNG", transparency=transparent_index)


def jpeg_with_orientation(array: npt.NDArray[np.uint8], orientation: int) -> bytes:
    """RGB JPEG carrying an EXIF orientation tag (6 = stored sideways, rotate 90 to view)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return array_file(array, "JPEG", exif=exif, quality=95)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` fraction of a file."""
    return data[: int(len(data) * keep)]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png16(array: npt.NDArray[np.uint16]) -> bytes:
    """16-bit PNG of an HxWxC uint16 array: C = 2 grey + alpha, 3 RGB, 4 RGBA."""
    height, width, channels = array.shape
    colour_type = {2: 4, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)  # filter 0
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


@functools.cache
def png_bomb(side: int = 30000) -> bytes:
    """A complete, valid 8-bit grey PNG of ``side`` x ``side`` zeros in under 1 MB.

    Deflate is run on one block of rows only: after a full flush the compressor's state is
    reset, so every further block compresses to the same bytes and can be repeated. The
    zlib trailer (Adler-32 of n zero bytes is ``(n mod 65521) << 16 | 1``) is computed.
    """
    row_bytes = side + 1  # filter byte + pixels
    block_rows = 100
    blocks, rest = divmod(side, block_rows)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(row_bytes * block_rows))
    block += compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(bytes(row_bytes * rest)) + compressor.flush(zlib.Z_FINISH)
    adler = ((row_bytes * side) % 65521) << 16 | 1
    stream = b"\x78\xda" + block * blocks + tail + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", stream)
        + png_chunk(b"IEND", b"")
    )


def tiff_rgb16(array: npt.NDArray[np.uint16]) -> bytes:
    """Baseline uncompressed little-endian TIFF of an HxWx3 uint16 array."""
    height, width = array.shape[:2]
    pixels = array.astype("<u2").tobytes()
    entries = 10
    bits_at = 8 + 2 + entries * 12 + 4
    data_at = bits_at + 6
    short, long_ = 3, 4
    tags = [
        (256, long_, 1, width),
        (257, long_, 1, height),
        (258, short, 3, bits_at),  # three values do not fit the entry: stored at bits_at
        (259, short, 1, 1),  # no compression
        (262, short, 1, 2),  # RGB
        (273, long_, 1, data_at),
        (277, short, 1, 3),
        (278, long_, 1, height),
        (279, long_, 1, len(pixels)),
        (284, short, 1, 1),  # chunky (interleaved) samples
    ]
    ifd = struct.pack("<H", entries)
    for tag, kind, count, value in tags:
        packed = struct.pack("<HI", value, 0)[:4] if kind == short else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)  # no further IFD
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<3H", 16, 16, 16) + pixels


def dicom_file(
    pixels: npt.NDArray[Any],
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    frames: int = 1,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    pixel_data: bytes | None = None,
) -> bytes:
    """A DICOM Part 10 file (preamble + "DICM") holding ``pixels``.

    ``pixels`` is HxW or HxWx3, or FxHxW with ``frames`` = F; dtype uint8, uint16 or int16
    sets BitsAllocated and PixelRepresentation. ``pixel_data`` replaces the encoded pixels
    (for compressed transfer syntaxes).
    """
    colour = photometric in ("RGB", "YBR_FULL")
    shape = pixels.shape[1:] if frames > 1 else pixels.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(np.issubdtype(pixels.dtype, np.signedinteger))
    if frames > 1:
        ds.NumberOfFrames = frames
    little_endian = pixels.astype(pixels.dtype.newbyteorder("<"))
    ds.PixelData = pixel_data if pixel_data is not None else little_endian.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def fake_encapsulated(frames: int = 1) -> bytes:
    """Encapsulated pixel data holding one meaningless fragment per frame."""
    return encapsulate([b"\xff\xd8\xff\xd9" for _ in range(frames)])
