"""PNG encoding, thumbnails, display conversion and statistics of decoded images."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.imaging import (
    DecodedImage,
    compute_statistics,
    decode_image,
    decode_mask,
    encode_png,
    make_thumbnail,
    mask_to_png,
    to_display_rgb8,
)

MB = 1 << 20


def image_of(pixels: np.ndarray) -> DecodedImage:
    return DecodedImage.from_pixels(pixels, "png")


def open_png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img


@pytest.mark.parametrize(
    "pixels",
    [
        np.arange(20, dtype=np.uint8).reshape(4, 5),
        (np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5),
        np.arange(60, dtype=np.uint8).reshape(4, 5, 3),
    ],
    ids=["grey8", "grey16", "rgb8"],
)
def test_encode_png_is_lossless(pixels: np.ndarray) -> None:
    decoded = decode_image(encode_png(pixels), max_bytes=MB, max_pixels=MB)
    assert decoded.pixels.dtype == pixels.dtype
    np.testing.assert_array_equal(decoded.pixels, pixels)


def test_encode_png_keeps_16_bit_colour() -> None:
    pixels = (np.arange(60, dtype=np.uint16) * 1000 + 7).reshape(4, 5, 3)
    data = encode_png(pixels)
    # Pillow reads 16-bit colour as 8 bits (the high byte), which checks the file is valid.
    np.testing.assert_array_equal(np.asarray(open_png(data)), pixels >> 8)
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", data[16:26])
    assert (width, height, bit_depth, colour_type) == (5, 4, 16, 2)
    idat_length = struct.unpack(">I", data[33:37])[0]
    rows = np.frombuffer(zlib.decompress(data[41 : 41 + idat_length]), np.uint8).reshape(4, -1)
    assert not rows[:, 0].any()  # filter type 0: the bytes are the samples
    np.testing.assert_array_equal(rows[:, 1:].view(">u2").reshape(4, 5, 3), pixels)


def test_encode_png_refuses_other_arrays() -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        encode_png(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="cannot encode"):
        encode_png(np.zeros((2, 2, 4), np.uint8))


def test_mask_png_round_trips_class_indices() -> None:
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    data = mask_to_png(indices)
    back = decode_mask(data, width=3, height=2, num_classes=2, max_bytes=MB)
    np.testing.assert_array_equal(back, indices)
    with pytest.raises(ValueError, match="HxW uint8"):
        mask_to_png(indices.astype(np.uint16))


@pytest.mark.parametrize(
    ("shape", "max_side", "expected"),
    [((300, 600, 3), 256, (256, 128)), ((600, 300), 64, (32, 64)), ((10, 20, 3), 256, (20, 10))],
)
def test_thumbnail_fits_max_side_and_keeps_aspect(
    shape: tuple[int, ...], max_side: int, expected: tuple[int, int]
) -> None:
    pixels = np.random.default_rng(0).integers(0, 255, shape, np.uint8)
    img = open_png(make_thumbnail(image_of(pixels), max_side=max_side))
    assert img.size == expected
    assert img.mode == ("RGB" if len(shape) == 3 else "L")


def test_16_bit_thumbnail_spans_min_to_max() -> None:
    pixels = np.linspace(1000, 5000, 64, dtype=np.uint16).reshape(8, 8)
    thumb = np.asarray(open_png(make_thumbnail(image_of(pixels))))
    assert thumb.dtype == np.uint8 and (thumb.min(), thumb.max()) == (0, 255)


def test_display_rgb8_repeats_grey_and_copies() -> None:
    pixels = np.arange(6, dtype=np.uint8).reshape(2, 3)
    image = image_of(pixels)
    rgb = to_display_rgb8(image)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 1], pixels)
    rgb[0, 0] = 99
    assert image.pixels[0, 0] == 0


def test_display_rgb8_windows_16_bit_by_percentiles() -> None:
    pixels = np.full((100, 100), 2000, np.uint16)
    pixels[:50] = 1000
    pixels[0, 0] = 65535  # one hot pixel must not wash the rest out
    rgb = to_display_rgb8(image_of(pixels))
    assert (rgb[60, 0, 0], rgb[10, 0, 0], rgb[0, 0, 0]) == (255, 0, 255)


def test_statistics_of_a_known_grey_array() -> None:
    stats = compute_statistics(image_of(np.array([[0, 255], [10, 20]], np.uint8)))
    assert json.loads(json.dumps(stats)) == stats
    (grey,) = stats["channels"]
    assert (grey["name"], grey["min"], grey["max"], grey["mean"]) == ("grey", 0.0, 255.0, 71.25)
    assert grey["std"] == pytest.approx(np.std([0, 255, 10, 20]))
    assert grey["histogram"][:3] == [1, 1, 1] and grey["histogram"][31] == 1
    assert sum(grey["histogram"]) == 4 and len(grey["histogram"]) == 32
    assert (stats["saturated_fraction"], stats["histogram_range"]) == (0.25, [0, 256])


def test_statistics_of_16_bit_rgb() -> None:
    pixels = np.zeros((2, 2, 3), np.uint16)
    pixels[0, 0] = (65535, 0, 4096)
    stats = compute_statistics(image_of(pixels))
    assert json.loads(json.dumps(stats)) == stats
    red, _, blue = stats["channels"]
    assert (red["max"], red["mean"], blue["histogram"][2]) == (65535.0, 65535 / 4, 1)
    assert (stats["dtype"], stats["saturated_fraction"]) == ("uint16", 0.25)
