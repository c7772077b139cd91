"""Reading images and masks into the library's arrays, and content hashes of images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdsk.errors import SamdskError, ShapeError
from samdsk.imageio import ImageReadError, hash_array, read_image, read_mask, to_rgb_uint8

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _png(array: np.ndarray, mode: str | None = None, **options: object) -> io.BytesIO:
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=str(options.pop("format", "PNG")), **options)
    buffer.seek(0)
    return buffer


def _data(dataset: str) -> Path:
    folder = DATA / dataset
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder}")
    return folder


def test_real_colour_jpeg_reads_as_rgb_uint8() -> None:
    folder = _data("kvasir_seg")
    path = sorted((folder / "images").glob("*.jpg"))[0]
    image = read_image(path)
    with Image.open(path) as pil:
        expected = np.asarray(pil.convert("RGB"))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    np.testing.assert_array_equal(image, expected)


def test_real_mask_reads_as_bool_with_the_foreground_of_the_file() -> None:
    folder = _data("busi")
    path = folder / "masks" / "benign_001.png"
    mask = read_mask(path)
    with Image.open(path) as pil:
        raw = np.asarray(pil.convert("L"))
    assert mask.dtype == np.bool_ and mask.shape == raw.shape
    np.testing.assert_array_equal(mask, raw > 127)
    assert 0 < mask.sum() < mask.size


def test_grey_image_is_repeated_into_three_equal_channels() -> None:
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    image = read_image(_png(grey))
    assert image.shape == (6, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], grey)


def test_sixteen_bit_image_is_stretched_from_its_own_range() -> None:
    # A 12-bit scan stored in 16 bits: a fixed divide by 257 would leave it nearly black.
    deep = np.linspace(1000, 4000, 64, dtype=np.uint16).reshape(8, 8)
    image = read_image(_png(deep))
    assert image.dtype == np.uint8 and image.shape == (8, 8, 3)
    assert image.min() == 0 and image.max() == 255
    assert np.all(np.diff(image[..., 0].ravel().astype(int)) >= 0)  # order is kept


def test_alpha_and_palette_images_read_as_their_colours() -> None:
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    np.testing.assert_array_equal(read_image(_png(rgba))[0, 0], [200, 0, 0])
    indices = np.zeros((4, 5), dtype=np.uint8)
    indices[:, :2] = 1
    indexed = Image.fromarray(indices, mode="P")
    indexed.putpalette([0, 0, 0, 10, 120, 250])
    buffer = io.BytesIO()
    indexed.save(buffer, format="PNG")
    palette = read_image(buffer)
    np.testing.assert_array_equal(palette[0, 0], [10, 120, 250])
    np.testing.assert_array_equal(palette[0, 4], [0, 0, 0])


def test_exif_rotation_is_applied() -> None:
    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image = read_image(_png(wide, format="JPEG", exif=exif.tobytes()))
    assert image.shape == (30, 10, 3)


def test_to_rgb_uint8_converts_floats_bools_and_refuses_bad_shapes() -> None:
    floats = np.array([[0.0, 0.5], [1.0, np.nan]])
    np.testing.assert_array_equal(to_rgb_uint8(floats)[..., 0], [[0, 128], [255, 0]])
    np.testing.assert_array_equal(to_rgb_uint8(np.full((2, 2), 7.0)), 0)
    np.testing.assert_array_equal(to_rgb_uint8(np.eye(2, dtype=bool))[..., 1], [[255, 0], [0, 255]])
    with pytest.raises(ShapeError, match="HxW"):
        to_rgb_uint8(np.zeros((2, 2, 2)))
    with pytest.raises(ShapeError, match="no pixels"):
        to_rgb_uint8(np.zeros((0, 3)))


@pytest.mark.parametrize(
    ("array", "options"),
    [
        (np.array([[0, 1], [1, 0]], dtype=np.uint8), {}),  # 0/1 labels
        (np.array([[0, 255], [255, 0]], dtype=np.uint8), {}),
        (np.array([[0, 65535], [65535, 0]], dtype=np.uint16), {}),
        (np.array([[0, 255], [255, 0]], dtype=np.uint8), {"mode": "1"}),
        (np.array([[0, 255], [255, 0]], dtype=np.uint8), {"mode": "RGB"}),
    ],
)
def test_mask_encodings_read_as_the_same_foreground(
    array: np.ndarray, options: dict[str, str]
) -> None:
    mask = read_mask(_png(array, **options))
    np.testing.assert_array_equal(mask, [[False, True], [True, False]])


def test_jpeg_compressed_mask_keeps_its_shape() -> None:
    truth = np.zeros((64, 64), dtype=np.uint8)
    truth[16:48, 20:40] = 255
    mask = read_mask(_png(truth, format="JPEG", quality=75))
    assert np.count_nonzero(mask != (truth > 0)) <= 8


def test_unreadable_files_raise_a_library_error(tmp_path: Path) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_bytes(b"these are not pixels")
    with pytest.raises(ImageReadError, match="cannot decode"):
        read_image(not_image)
    with pytest.raises(ImageReadError, match="not found"):
        read_mask(tmp_path / "missing.png")
    assert issubclass(ImageReadError, SamdskError) and issubclass(ImageReadError, ValueError)


def test_hash_names_pixels_shape_and_dtype() -> None:
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert hash_array(image) == hash_array(image.copy())
    assert len(hash_array(image)) == 64 and int(hash_array(image), 16) >= 0
    flipped = image[:, ::-1]  # a view with negative strides hashes like its contiguous copy
    assert hash_array(flipped) == hash_array(np.ascontiguousarray(flipped))
    assert hash_array(image) != hash_array(image.reshape(4, 2, 3))
    assert hash_array(image) != hash_array(image.astype(np.uint16))
    changed = image.copy()
    changed[1, 3, 2] ^= 1
    assert hash_array(image) != hash_array(changed)
