"""decode_image: real data-set images, generated formats, and every way an upload can be bad."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, JPEGLSLossless

import app.imaging
from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from app.imaging import DecodedImage, decode_image
from tests.image_fixtures import (
    array_file,
    dicom_file,
    encode,
    fake_encapsulated,
    jpeg_with_orientation,
    palette_png,
    png16,
    png_bomb,
    tiff_rgb16,
    truncated,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")
MB = 1 << 20


def decode(data: bytes, *, max_bytes: int = 50 * MB, max_pixels: int = 50_000_000) -> DecodedImage:
    return decode_image(data, filename="upload", max_bytes=max_bytes, max_pixels=max_pixels)


def ramp(height: int, width: int, dtype: type = np.uint8, scale: int = 1) -> np.ndarray:
    return (np.arange(height * width).reshape(height, width) * scale).astype(dtype)


def test_public_api_is_pinned() -> None:
    assert sorted(app.imaging.__all__) == sorted(
        [
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
    )


@needs_data
@pytest.mark.parametrize(
    ("path", "fmt", "size"),
    [
        ("kvasir_seg/images/cju0qoxqj9q6s0835b43399p4.jpg", "jpeg", (1348, 1070)),
        ("busi/images/benign_001.png", "png", (416, 416)),
        ("ph2/images/IMD002.jpg", "jpeg", (765, 572)),
    ],
)
def test_data_set_images_decode_as_8_bit_rgb(path: str, fmt: str, size: tuple[int, int]) -> None:
    image = decode((DATA / path).read_bytes())
    assert (image.format, (image.width, image.height)) == (fmt, size)
    assert (image.channels, image.bit_depth) == (3, 8) and image.pixels.dtype == np.uint8
    assert image.pixels.shape == (size[1], size[0], 3)
    assert image.pixels.std() > 10  # real content, not a blank canvas


def test_grey_png_keeps_values() -> None:
    pixels = ramp(5, 7)
    image = decode(array_file(pixels))
    assert (image.format, image.channels, image.bit_depth) == ("png", 1, 8)
    np.testing.assert_array_equal(image.pixels, pixels)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_grey_stays_uint16(fmt: str) -> None:
    pixels = ramp(6, 4, np.uint16, scale=2500)
    image = decode(array_file(pixels, fmt))
    assert (image.format, image.channels, image.bit_depth) == (fmt.lower(), 1, 16)
    assert image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, pixels)


def test_8_bit_rgb_tiff_and_bmp() -> None:
    pixels = np.stack([ramp(4, 5), ramp(4, 5) + 100, ramp(4, 5) * 2], axis=2).astype(np.uint8)
    for fmt in ("TIFF", "BMP"):
        image = decode(array_file(pixels, fmt))
        assert (image.format, image.channels) == (fmt.lower(), 3)
        np.testing.assert_array_equal(image.pixels, pixels)


def test_rgba_png_drops_alpha_without_compositing() -> None:
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 200, 100, 50, 0
    image = decode(array_file(rgba))
    assert image.channels == 3
    np.testing.assert_array_equal(image.pixels, rgba[..., :3])


@pytest.mark.parametrize("transparent_index", [None, 1])
def test_palette_png_becomes_rgb(transparent_index: int | None) -> None:
    indices = np.array([[0, 1], [2, 3]], np.uint8)
    image = decode(palette_png(indices, transparent_index=transparent_index))
    assert image.channels == 3
    expected = np.stack([indices.astype(int) * k for k in (1, 2, 3)], axis=2)
    np.testing.assert_array_equal(image.pixels, expected)


def test_one_bit_png_becomes_0_255_grey() -> None:
    pixels = np.array([[0, 1, 1], [1, 0, 0]], bool)
    image = decode(array_file(pixels))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.uint8) * 255)


def test_jpeg_exif_orientation_is_applied() -> None:
    image = decode(jpeg_with_orientation(np.full((10, 30, 3), 128, np.uint8), orientation=6))
    assert (image.width, image.height) == (10, 30)


def test_16_bit_colour_or_alpha_is_refused_rather_than_cut_to_8_bits() -> None:
    rgb16 = ramp(3, 12, np.uint16, scale=1000).reshape(3, 4, 3)
    for data in (tiff_rgb16(rgb16), png16(rgb16), png16(rgb16[..., :2])):
        with pytest.raises(InvalidInput, match="16-bit colour or alpha"):
            decode(data)


def test_grey_with_alpha_and_cmyk_become_grey_and_rgb() -> None:
    grey = ramp(3, 4, scale=20)
    la = Image.merge("LA", [Image.fromarray(grey), Image.new("L", (4, 3), 0)])
    np.testing.assert_array_equal(decode(encode(la, "PNG")).pixels, grey)
    cmyk = decode(encode(Image.new("CMYK", (4, 3), (0, 255, 255, 0)), "JPEG", quality=100))
    assert cmyk.channels == 3
    assert tuple(cmyk.pixels[1, 1]) == pytest.approx((255, 0, 0), abs=3)


def test_multi_page_tiff_is_refused() -> None:
    pages = [Image.fromarray(ramp(3, 4)), Image.fromarray(ramp(3, 4) + 1)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    with pytest.raises(InvalidInput, match="this TIFF has 2 frames"):
        decode(data)


def test_dicom_monochrome2_16_bit_keeps_stored_values() -> None:
    pixels = ramp(4, 6, np.uint16, scale=150)
    image = decode(dicom_file(pixels, bits_stored=12))
    assert (image.format, image.channels, image.bit_depth) == ("dicom", 1, 16)
    np.testing.assert_array_equal(image.pixels, pixels)


def test_dicom_monochrome1_is_inverted_within_bits_stored() -> None:
    pixels = ramp(3, 3, np.uint16, scale=500)
    image = decode(dicom_file(pixels, photometric="MONOCHROME1", bits_stored=12))
    np.testing.assert_array_equal(image.pixels, 4095 - pixels)


def test_dicom_8_bit_rgb() -> None:
    pixels = np.stack([ramp(2, 3), ramp(2, 3) + 50, ramp(2, 3) + 90], axis=2).astype(np.uint8)
    image = decode(dicom_file(pixels, photometric="RGB"))
    assert (image.channels, image.bit_depth) == (3, 8)
    np.testing.assert_array_equal(image.pixels, pixels)


def test_dicom_signed_values_are_shifted_to_unsigned_in_order() -> None:
    pixels = np.array([[-1024, 0], [1, 3000]], np.int16)
    image = decode(dicom_file(pixels))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.int32) + 32768)


def test_multi_frame_dicom_is_refused() -> None:
    with pytest.raises(InvalidInput, match="only single-frame 2D DICOM is supported"):
        decode(dicom_file(np.zeros((3, 4, 4), np.uint8), frames=3))


def test_dicom_pixel_limit_is_checked_before_pixel_data() -> None:
    data = dicom_file(np.zeros((4, 4), np.uint8), pixel_data=b"\x00" * 2)  # far too short
    with pytest.raises(PayloadTooLarge, match="image has 16 pixels, limit is 15"):
        decode(data, max_pixels=15)


def test_truncated_dicom() -> None:
    data = dicom_file(ramp(32, 32, np.uint16), bits_stored=12)
    with pytest.raises(InvalidInput, match="corrupt or truncated DICOM"):
        decode(truncated(data, 0.7))


def test_dicom_errors_say_nothing_of_memory_addresses() -> None:
    """A JPEG fragment that is no JPEG: the decoder's complaint names an in-memory file."""
    data = dicom_file(
        np.zeros((8, 8), np.uint8),
        transfer_syntax=JPEGBaseline8Bit,
        pixel_data=encapsulate([b"\xff\xd8garbage\xff\xd9"]),
    )
    with pytest.raises(InvalidInput, match="corrupt or truncated DICOM pixel data") as refused:
        decode(data)
    assert " at 0x" not in refused.value.message and "BytesIO" not in refused.value.message


def test_dicom_compression_without_decoder_is_unsupported_and_says_why() -> None:
    data = dicom_file(
        np.zeros((4, 4), np.uint16),
        transfer_syntax=JPEGLSLossless,
        pixel_data=fake_encapsulated(),
    )
    with pytest.raises(UnsupportedMediaType, match=r"JPEG-LS.*not installed"):
        decode(data)


def test_empty_file() -> None:
    with pytest.raises(InvalidInput, match="empty file"):
        decode(b"")


def test_oversize_bytes_are_refused_before_anything_else() -> None:
    with pytest.raises(PayloadTooLarge, match="file is 101 bytes, limit is 100 bytes"):
        decode(b"x" * 101, max_bytes=100)


def test_text_named_png_is_unsupported_and_names_the_accepted_formats() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        decode_image(b"patient,label\n1,polyp\n", filename="scan.png", max_bytes=MB, max_pixels=MB)
    message = caught.value.message
    assert "scan.png" in message and "text" in message
    assert "PNG, JPEG, TIFF, BMP, DICOM" in message


def test_truncated_png() -> None:
    with pytest.raises(InvalidInput, match="corrupt or truncated PNG"):
        decode(truncated(array_file(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))))


@pytest.mark.parametrize("damage", ["truncated", "garbled header"])
def test_corrupt_jpeg(damage: str) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)
    data = array_file(noise, "JPEG")
    data = truncated(data) if damage == "truncated" else data[:4] + b"\x00" * 200 + data[204:]
    with pytest.raises(InvalidInput, match="corrupt or truncated JPEG"):
        decode(data)


def test_png_bomb_is_refused_fast_from_its_header() -> None:
    data = png_bomb()
    start = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match="image has 900000000 pixels, limit is 50000000"):
        decode(data)
    assert time.perf_counter() - start < 1.0


def test_pixel_limit_applies_to_ordinary_images() -> None:
    with pytest.raises(PayloadTooLarge, match="image has 35 pixels, limit is 34"):
        decode(array_file(ramp(5, 7)), max_pixels=34)


def test_float_tiff_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match="F pixels"):
        decode(array_file(np.zeros((3, 3), np.float32), "TIFF"))
