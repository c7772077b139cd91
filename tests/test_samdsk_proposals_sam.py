"""The SAM proposal source and its checkpoint loading, on a tiny randomly initialised SAM
saved as a real checkpoint file; plus the registry and the offline fallback."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from samdsk.errors import CheckpointError, ConfigError
from samdsk.proposals import (
    OfflineProposalSource,
    ProposalSource,
    build_proposal_source,
    default_proposal_source,
)
from samdsk.proposals.sam import SamProposalSource, load_sam
from tests.tiny_sam import kvasir_image, save_tiny_sam

FAST = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mask decoder outputs offset, so that even random weights draw non-empty masks."""
    return save_tiny_sam(tmp_path_factory.mktemp("sam") / "sam_vit_tiny.pth", bias_std=3.0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return kvasir_image(128)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_sam_loads_the_checkpoint_weights_and_logs_them(
    checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="samdsk.proposals.weights")
    model = load_sam(checkpoint, "vit_tiny", "cpu")
    saved = torch.load(checkpoint, weights_only=True)
    assert not model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name
    assert "vit_tiny" in caplog.text and _sha(checkpoint)[:12] in caplog.text


def test_sam_source_proposes_masks_of_the_image_size(checkpoint: Path, image: np.ndarray) -> None:
    source = build_proposal_source("sam", checkpoint=checkpoint, model_type="vit_tiny", **FAST)
    assert isinstance(source, ProposalSource) and source.name == "sam"
    proposals = source.propose(image)
    assert proposals.source == "sam" and len(proposals) >= 1
    assert proposals.masks.dtype == np.bool_
    assert proposals.masks.shape[1:] == image.shape[:2]
    assert proposals.scores.dtype == np.float32 and np.all(np.isfinite(proposals.scores))
    assert np.all(np.diff(proposals.scores) <= 0)  # best first
    assert proposals.masks.any(axis=(1, 2)).any()


def test_sam_source_names_its_weights(checkpoint: Path, tmp_path: Path) -> None:
    source = build_proposal_source("sam", checkpoint=checkpoint, model_type="vit_tiny", **FAST)
    digest = _sha(checkpoint)
    assert source.describe() == f"sam vit_tiny from {checkpoint} (sha256 {digest[:12]})"
    assert digest[:16] in source.settings_key()
    moved = tmp_path / "elsewhere.pth"
    shutil.copy(checkpoint, moved)
    same_weights = build_proposal_source("sam", checkpoint=moved, model_type="vit_tiny", **FAST)
    assert same_weights.settings_key() == source.settings_key()
    denser = build_proposal_source(
        "sam", checkpoint=checkpoint, model_type="vit_tiny", **{**FAST, "points_per_side": 8}
    )
    assert denser.settings_key() != source.settings_key()


def test_sam_defaults_are_the_papers_settings(checkpoint: Path) -> None:
    source = SamProposalSource(checkpoint=checkpoint, model_type="vit_tiny")
    assert source.points_per_side == 32
    assert source.pred_iou_thresh == source.stability_score_thresh == 0.5
    assert source.box_nms_thresh == source.crop_nms_thresh == 0.5


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        build_proposal_source("sam", checkpoint=tmp_path / "absent.pth", model_type="vit_tiny")


def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 truncated download")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_sam(broken, "vit_tiny", "cpu")
    not_weights = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(CheckpointError, match="no state dict"):
        load_sam(not_weights, "vit_tiny", "cpu")


def test_checkpoint_of_another_architecture_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    state = torch.load(checkpoint, weights_only=True)
    del state["mask_decoder.iou_token.weight"]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    with pytest.raises(CheckpointError, match="does not fit SAM model type 'vit_tiny'"):
        load_sam(partial, "vit_tiny", "cpu")


def test_unknown_model_type_lists_the_valid_ones(checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="vit_b, vit_l, vit_h, vit_tiny"):
        load_sam(checkpoint, "vit_giant", "cpu")
    with pytest.raises(ConfigError, match="vit_giant"):
        build_proposal_source("sam", checkpoint=checkpoint, model_type="vit_giant")


def test_registry_refuses_unknown_names_and_settings(checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="valid names: offline, sam"):
        build_proposal_source("slic")
    with pytest.raises(ConfigError, match="points_per_sid"):
        build_proposal_source("sam", checkpoint=checkpoint, points_per_sid=4)
    with pytest.raises(ConfigError, match="needs checkpoint"):
        build_proposal_source("sam", model_type="vit_b")
    with pytest.raises(ConfigError, match="uses none"):
        build_proposal_source("offline", checkpoint=checkpoint)


def test_offline_accepts_unset_sam_options() -> None:
    source = build_proposal_source("offline", checkpoint=None, model_type="vit_b", device="auto")
    assert isinstance(source, OfflineProposalSource)


def test_default_source_without_checkpoint_is_offline_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    source = default_proposal_source(None)
    assert source.name == "offline"
    assert default_proposal_source("").name == "offline"  # an empty setting is no checkpoint
    assert "NO SAM checkpoint" in source.describe()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("NO SAM CHECKPOINT CONFIGURED" in r.getMessage() for r in warnings)


def test_default_source_with_checkpoint_is_sam(checkpoint: Path) -> None:
    source = default_proposal_source(str(checkpoint), sam_model="vit_tiny")
    assert source.name == "sam" and "vit_tiny" in source.describe()
