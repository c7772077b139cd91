"""decode_mask: the encodings masks arrive in, and the ones that must be refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from app.imaging import decode_image, decode_mask
from tests.image_fixtures import array_file, palette_png, png16, png_bomb, truncated

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")
MB = 1 << 20
BINARY = np.array([[0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 0]], np.uint8)  # 4 wide, 3 high


def mask(data: bytes, *, num_classes: int = 1, size: tuple[int, int] = (4, 3)) -> np.ndarray:
    return decode_mask(data, width=size[0], height=size[1], num_classes=num_classes, max_bytes=MB)


def decode_pair(image_path: str, mask_path: str) -> np.ndarray:
    image = decode_image((DATA / image_path).read_bytes(), max_bytes=50 * MB, max_pixels=10**8)
    result = decode_mask(
        (DATA / mask_path).read_bytes(),
        width=image.width,
        height=image.height,
        num_classes=1,
        max_bytes=50 * MB,
    )
    assert result.shape == (image.height, image.width) and result.dtype == np.uint8
    return result


@needs_data
@pytest.mark.parametrize(
    ("image_path", "mask_path"),
    [
        (
            "kvasir_seg/images/cju0qoxqj9q6s0835b43399p4.jpg",
            "kvasir_seg/masks/cju0qoxqj9q6s0835b43399p4.png",
        ),
        ("busi/images/benign_001.png", "busi/masks/benign_001.png"),
        ("ph2/images/IMD002.jpg", "ph2/masks/IMD002.png"),
    ],
)
def test_data_set_masks_decode_to_0_1_at_image_size(image_path: str, mask_path: str) -> None:
    assert set(np.unique(decode_pair(image_path, mask_path)).tolist()) == {0, 1}


@needs_data
def test_empty_data_set_mask_is_all_background() -> None:
    assert not decode_pair("busi/images/normal_001.png", "busi/masks/normal_001.png").any()


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP"])
def test_0_255_becomes_0_1_for_one_class(fmt: str) -> None:
    np.testing.assert_array_equal(mask(array_file(BINARY * 255, fmt)), BINARY)


def test_index_form_is_kept() -> None:
    indices = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 0, 0, 0]], np.uint8)
    np.testing.assert_array_equal(mask(array_file(indices), num_classes=3), indices)


def test_one_bit_palette_and_16_bit_masks() -> None:
    np.testing.assert_array_equal(mask(array_file(BINARY.astype(bool))), BINARY)
    np.testing.assert_array_equal(mask(palette_png(BINARY * 2), num_classes=2), BINARY * 2)
    np.testing.assert_array_equal(mask(array_file(BINARY.astype(np.uint16) * 255)), BINARY)


def test_rgb_mask_with_equal_channels_is_grey() -> None:
    rgb = np.repeat((BINARY * 255)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(mask(array_file(rgb)), BINARY)


def test_rgb_mask_with_differing_channels_is_refused() -> None:
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    with pytest.raises(InvalidInput, match="mask must be single-channel"):
        mask(array_file(rgb))


def test_16_bit_colour_mask_is_refused_rather_than_cut_to_8_bits() -> None:
    rgb16 = np.repeat(BINARY.astype(np.uint16)[:, :, None], 3, axis=2)
    with pytest.raises(InvalidInput, match="16-bit colour or alpha PNG"):
        mask(png16(rgb16))


def test_wrong_size_names_both_sizes() -> None:
    with pytest.raises(InvalidInput, match="mask is 4x3 but the image is 5x3"):
        mask(array_file(BINARY * 255), size=(5, 3))


def test_values_outside_the_allowed_set_are_listed() -> None:
    values = np.array([[0, 128, 255, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.uint8)
    with pytest.raises(InvalidInput, match=r"found 128$"):
        mask(array_file(values))


def test_at_most_five_offending_values_are_listed() -> None:
    values = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with pytest.raises(InvalidInput, match=r"found 3, 4, 5, 6, 7 and 4 more$"):
        mask(array_file(values), num_classes=2)


def test_255_is_ambiguous_with_several_classes() -> None:
    with pytest.raises(InvalidInput, match="found 255"):
        mask(array_file(BINARY * 255), num_classes=2)


def test_mixing_1_and_255_is_refused() -> None:
    values = BINARY.copy()
    values[0, 0] = 255
    with pytest.raises(InvalidInput, match="mixes the values 1 and 255"):
        mask(array_file(values))


def test_bad_mask_files() -> None:
    with pytest.raises(InvalidInput, match="empty file"):
        mask(b"")
    with pytest.raises(UnsupportedMediaType, match="JPEG"):
        mask(array_file(np.repeat((BINARY * 255)[:, :, None], 3, axis=2), "JPEG"))
    with pytest.raises(InvalidInput, match="corrupt or truncated PNG"):
        big = np.random.default_rng(0).integers(0, 2, (64, 64), np.uint8)
        mask(truncated(array_file(big)), size=(64, 64))
    with pytest.raises(PayloadTooLarge):
        decode_mask(array_file(BINARY), width=4, height=3, num_classes=1, max_bytes=10)


def test_mask_bomb_is_refused_by_its_size_before_decoding() -> None:
    with pytest.raises(InvalidInput, match="mask is 30000x30000"):
        decode_mask(png_bomb(), width=64, height=64, num_classes=1, max_bytes=10 * MB)
