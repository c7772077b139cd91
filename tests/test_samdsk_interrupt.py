"""Long computations of one image stop at their next part when the caller's check raises:
SAM's encoder blocks and prompt batches (reference generator and engine), the offline
source's segmentations. Outside ``interruptible`` nothing is checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samdsk.interrupt import check_interrupt, interruptible
from samdsk.proposals import OfflineProposalSource, build_proposal_source
from samdsk.types import Proposals
from tests.tiny_sam import kvasir_image, save_tiny_sam

SAM = {"points_per_side": 4, "points_per_batch": 8, "pred_iou_thresh": 0.0}


class Stop(Exception):
    pass


class Check:
    """Counts its calls; raises on call ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls, self.stop_at = 0, stop_at

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == self.stop_at:
            raise Stop(f"stopped at check {self.calls}")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("sam") / "sam_vit_tiny.pth", bias_std=3.0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return kvasir_image(128)


def _same(one: Proposals, two: Proposals) -> None:
    assert np.array_equal(one.masks, two.masks) and np.array_equal(one.scores, two.scores)


@pytest.mark.parametrize("name", ["sam", "sam_fast"])
def test_sam_checks_between_blocks_and_prompt_batches(
    name: str, checkpoint: Path, image: np.ndarray
) -> None:
    extra = {"image_batch": 1} if name == "sam_fast" else {}
    source = build_proposal_source(
        name, checkpoint=checkpoint, model_type="vit_tiny", **SAM, **extra
    )
    unchecked = source.propose(image)
    counted = Check()
    with interruptible(counted):
        _same(source.propose(image), unchecked)
    # the tiny encoder's 2 blocks, then at least one prompt batch
    assert counted.calls >= 3
    for stop_at in (1, counted.calls):  # in the encoder, at the last prompt batch
        with interruptible(Check(stop_at)), pytest.raises(Stop):
            source.propose(image)
    _same(source.propose(image), unchecked)  # a stopped image leaves nothing behind


def test_offline_checks_between_segmentations(image: np.ndarray) -> None:
    source = OfflineProposalSource(superpixel_counts=(50, 100), coarse_scales=(200.0,))
    counted = Check()
    with interruptible(counted):
        whole = source.propose(image)
    assert counted.calls == 2 + 1 + 1
    with interruptible(Check(stop_at=2)), pytest.raises(Stop):
        source.propose(image)
    _same(source.propose(image), whole)


def test_nothing_is_checked_outside_interruptible() -> None:
    check = Check(stop_at=1)
    with interruptible(check):
        pass
    check_interrupt()
    assert check.calls == 0
    with interruptible(check), pytest.raises(Stop):
        check_interrupt()
