"""Folders of image/mask pairs and reproducible experiment splits.

A data folder holds ``images/<stem>.<ext>`` and ``masks/<stem>.png`` (any mask a
``samdsk.imageio.read_mask`` reads). An optional ``split.csv`` (header ``name,split``; one row
per image stem, split ``train``, ``val`` or ``test``) fixes the pool/test split: the pool is
the ``train`` rows, the test set the ``val`` and ``test`` rows. Without it the split is a seeded
80/20 draw. Every draw uses ``numpy.random.default_rng`` seeded from (seed, step), so one seed
gives one split on every machine.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from samdsk.errors import SamdskError
from samdsk.imageio import read_image, read_mask

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
POOL_SPLITS = ("train",)
TEST_SPLITS = ("val", "test")
# Seeds of the independent draws, so that changing one step never shifts another.
_SUBSAMPLE, _TEST, _LABELED, _VALIDATION = 1, 2, 3, 4


class DatasetError(SamdskError, ValueError):
    """A data folder without the expected layout, or a split that cannot be made."""


@dataclass(frozen=True)
class Pair:
    """One image file and its mask file, named by their common stem."""

    stem: str
    image_path: Path
    mask_path: Path


@dataclass(frozen=True)
class Sample:
    """A loaded pair: image H x W x 3 uint8 RGB, mask H x W bool (the same H x W)."""

    stem: str
    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Split:
    """Stems of each part of an experiment (each tuple sorted; the parts are disjoint).

    labeled: human-labelled training images; validation: human-labelled images held out for
    model selection; unlabeled: the rest of the pool (ground truth hidden from the method);
    test: evaluation only (empty when a separate test folder is used). source says how the
    pool/test split was made.
    """

    labeled: tuple[str, ...]
    validation: tuple[str, ...]
    unlabeled: tuple[str, ...]
    test: tuple[str, ...]
    source: str

    @property
    def pool(self) -> tuple[str, ...]:
        """Every stem the method may train on: labeled, validation and unlabeled, sorted."""
        return tuple(sorted((*self.labeled, *self.validation, *self.unlabeled)))


def find_pairs(folder: Path) -> list[Pair]:
    """The image/mask pairs of ``folder`` sorted by stem; images without a mask are skipped."""
    images_dir, masks_dir = Path(folder) / "images", Path(folder) / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"{folder} must hold images/ and masks/ folders")
    pairs, missing = [], 0
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        mask = masks_dir / f"{path.stem}.png"
        if mask.is_file():
            pairs.append(Pair(path.stem, path, mask))
        else:
            missing += 1
    if missing:
        logger.warning("%d images in %s have no mask and are left out", missing, images_dir)
    if not pairs:
        raise DatasetError(f"no image/mask pairs in {folder}")
    stems = [pair.stem for pair in pairs]
    if len(set(stems)) != len(stems):
        raise DatasetError(f"{images_dir} holds several images with the same stem")
    return pairs


def read_split_csv(path: Path) -> dict[str, str]:
    """Stem -> split from a ``name,split`` CSV; names may carry a file extension."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if (
        not rows
        or len(rows[0]) < 2
        or [c.strip().lower() for c in rows[0][:2]]
        != [
            "name",
            "split",
        ]
    ):
        raise DatasetError(f"{path} must start with the header 'name,split'")
    splits: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2:
            raise DatasetError(f"{path} line {number}: expected 'name,split'")
        name, split = row[0].strip(), row[1].strip().lower()
        if split not in (*POOL_SPLITS, *TEST_SPLITS):
            raise DatasetError(
                f"{path} line {number}: unknown split {split!r}; valid: "
                f"{[*POOL_SPLITS, *TEST_SPLITS]}"
            )
        stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
        splits[stem] = split
    return splits


def make_split(
    stems: Sequence[str],
    *,
    labeled_fraction: float,
    seed: int = 0,
    split_csv: dict[str, str] | None = None,
    separate_test: bool = False,
    max_images: int | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
) -> Split:
    """Split ``stems`` into labeled / validation / unlabeled / test (see ``Split``).

    max_images: first draw this many stems (seeded) to shorten a run.
    split_csv: stem -> split; stems it does not list are left out. Ignored when
        ``separate_test`` (all stems form the pool, the test images come from elsewhere).
    labeled_fraction: the share of the pool labelled by humans (at least 2 images, so that
        validation (``validation_fraction`` of them, at least 1) leaves one to train on).
    """
    if not 0.0 < labeled_fraction <= 1.0:
        raise DatasetError(f"labeled fraction must be in (0, 1]; got {labeled_fraction}")
    chosen = sorted(set(stems))
    if max_images is not None:
        if max_images < 1:
            raise DatasetError(f"max_images must be >= 1; got {max_images}")
        chosen = sorted(_shuffled(chosen, seed, _SUBSAMPLE)[:max_images])
    pool, test, source = _pool_and_test(chosen, seed, split_csv, separate_test, test_fraction)
    n_labeled = max(2, round(labeled_fraction * len(pool)))
    if n_labeled > len(pool):
        raise DatasetError(f"the pool holds {len(pool)} images; at least 2 must be labeled")
    shuffled = _shuffled(pool, seed, _LABELED)
    human, unlabeled = shuffled[:n_labeled], shuffled[n_labeled:]
    n_val = min(max(1, round(validation_fraction * len(human))), len(human) - 1)
    human = _shuffled(sorted(human), seed, _VALIDATION)
    return Split(
        labeled=tuple(sorted(human[n_val:])),
        validation=tuple(sorted(human[:n_val])),
        unlabeled=tuple(sorted(unlabeled)),
        test=tuple(sorted(test)),
        source=source,
    )


def _pool_and_test(
    stems: list[str],
    seed: int,
    split_csv: dict[str, str] | None,
    separate_test: bool,
    test_fraction: float,
) -> tuple[list[str], list[str], str]:
    if separate_test:
        return stems, [], "separate test folder"
    if split_csv is not None:
        unlisted = [stem for stem in stems if stem not in split_csv]
        if unlisted:
            logger.warning("%d images are not in split.csv and are left out", len(unlisted))
        pool = [s for s in stems if split_csv.get(s) in POOL_SPLITS]
        test = [s for s in stems if split_csv.get(s) in TEST_SPLITS]
        if not pool or not test:
            raise DatasetError(f"split.csv gives {len(pool)} pool and {len(test)} test images")
        return pool, test, "split.csv"
    if not 0.0 < test_fraction < 1.0 or len(stems) < 2:
        raise DatasetError(f"cannot split {len(stems)} images with test fraction {test_fraction}")
    n_test = min(max(1, math.floor(test_fraction * len(stems))), len(stems) - 1)
    shuffled = _shuffled(stems, seed, _TEST)
    return sorted(shuffled[n_test:]), sorted(shuffled[:n_test]), f"seeded {n_test} test images"


def _shuffled(stems: Sequence[str], seed: int, step: int) -> list[str]:
    order = np.random.default_rng([seed, step]).permutation(len(stems))
    return [stems[i] for i in order]


def load_samples(
    pairs: Sequence[Pair], size: int | None = None, *, show_progress_bar: bool = False
) -> list[Sample]:
    """Read pairs; with ``size``, resize so the longer side is ``size`` (aspect kept; image
    bilinear, mask nearest). A mask whose H x W differs from its image raises DatasetError."""
    samples = []
    for pair in tqdm(pairs, desc="loading", unit="image", disable=not show_progress_bar):
        image, mask = read_image(pair.image_path), read_mask(pair.mask_path)
        if image.shape[:2] != mask.shape:
            raise DatasetError(f"{pair.stem}: image {image.shape[:2]} but mask {mask.shape}")
        if size is not None:
            image, mask = resize_pair(image, mask, size)
        samples.append(Sample(pair.stem, image, mask))
    return samples


def resize_pair(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize an H x W x 3 uint8 image and H x W bool mask so the longer side is ``size``."""
    height, width = mask.shape
    scale = size / max(height, width)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL wants (W, H)
    resized = Image.fromarray(image).resize(new, Image.Resampling.BILINEAR)
    resized_mask = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        new, Image.Resampling.NEAREST
    )
    return np.asarray(resized, dtype=np.uint8), np.asarray(resized_mask) > 127
