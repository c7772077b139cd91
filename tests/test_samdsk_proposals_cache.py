"""The on-disk proposal cache: hits skip the source, keys follow settings, damage heals."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdsk.imageio import hash_array, read_image
from samdsk.proposals import OfflineProposalSource, ProposalCache
from samdsk.types import Proposals

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class CountingSource:
    """The real offline source at a small working size, counting how often it runs."""

    inner: OfflineProposalSource = field(
        default_factory=lambda: OfflineProposalSource(work_size=64)
    )
    calls: int = 0
    name: str = "offline"

    def settings_key(self) -> str:
        return self.inner.settings_key()

    def describe(self) -> str:
        return self.inner.describe()

    def propose(self, image: np.ndarray) -> Proposals:
        self.calls += 1
        return self.inner.propose(image)


def _image(dataset: str, pattern: str) -> np.ndarray:
    folder = DATA / dataset / "images"
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder}")
    full = Image.fromarray(read_image(sorted(folder.glob(pattern))[0]))
    return np.asarray(full.resize((64, round(64 * full.height / full.width))))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return _image("ph2", "*.jpg")


def _same(a: Proposals, b: Proposals) -> None:
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.source == b.source and a.scores.dtype == np.float32


def test_second_request_is_read_from_disk(tmp_path: Path, image: np.ndarray) -> None:
    source = CountingSource()
    first = ProposalCache(tmp_path).get_or_compute(image, source)
    assert source.calls == 1 and len(first) > 0
    again = ProposalCache(tmp_path).get_or_compute(image, source)  # a new process, same folder
    assert source.calls == 1
    _same(first, again)
    stored = list(tmp_path.rglob("*.npz"))
    assert len(stored) == 1 and stored[0].parts[-3] == "offline"
    assert not list(tmp_path.rglob(".tmp-*"))  # the temporary file was renamed, not left


def test_given_image_hash_is_the_key(tmp_path: Path, image: np.ndarray) -> None:
    source = CountingSource()
    cache = ProposalCache(tmp_path)
    cache.get_or_compute(image, source, image_hash=hash_array(image))
    assert cache.get(hash_array(image), source) is not None
    cache.get_or_compute(image, source)
    assert source.calls == 1


def test_other_settings_or_pixels_are_other_entries(tmp_path: Path, image: np.ndarray) -> None:
    cache = ProposalCache(tmp_path)
    small = CountingSource()
    fewer = CountingSource(inner=OfflineProposalSource(work_size=64, max_proposals=20))
    key = hash_array(image)
    assert cache.path(key, small) != cache.path(key, fewer)
    cache.get_or_compute(image, small)
    assert cache.get(key, fewer) is None
    limited = cache.get_or_compute(image, fewer)
    assert fewer.calls == 1 and len(limited) <= 20
    other = _image("busi", "benign_*.png")
    cache.get_or_compute(other, small)
    assert small.calls == 2 and len(list(tmp_path.rglob("*.npz"))) == 3


def test_damaged_file_is_recomputed_and_rewritten(
    tmp_path: Path, image: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    source = CountingSource()
    cache = ProposalCache(tmp_path)
    first = cache.get_or_compute(image, source)
    path = cache.path(hash_array(image), source)
    path.write_bytes(path.read_bytes()[:100])  # a write cut short by a crash
    caplog.set_level(logging.WARNING)
    again = cache.get_or_compute(image, source)
    assert source.calls == 2 and "damaged" in caplog.text
    _same(first, again)
    assert cache.get(hash_array(image), source) is not None  # rewritten whole


def test_file_of_another_key_never_answers(tmp_path: Path, image: np.ndarray) -> None:
    source = CountingSource()
    cache = ProposalCache(tmp_path)
    other = _image("busi", "benign_*.png")
    cache.get_or_compute(other, source)
    path = cache.path(hash_array(image), source)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.path(hash_array(other), source).rename(path)
    assert cache.get(hash_array(image), source) is None


def test_empty_proposals_round_trip(tmp_path: Path) -> None:
    cache = ProposalCache(tmp_path)
    source = CountingSource()
    cache.put("abc", source, Proposals.empty(5, 7, "offline"))
    found = cache.get("abc", source)
    assert found is not None and len(found) == 0 and (found.height, found.width) == (5, 7)
