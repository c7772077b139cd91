"""Self-supervised pretraining by restoration: the corruptions, the saved weights, the
experiment's use of them and the command-line option."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from samdsk.cli import build_parser, main
from samdsk.errors import CheckpointError, ConfigError
from samdsk.experiment import run_experiment
from samdsk.experiment_outputs import write_outputs
from samdsk.model import build_model
from samdsk.model.pretrain import (
    BLOCK_COVER,
    BLOCK_SIDE,
    SHUFFLE_SIDE,
    block_mask,
    corrupt,
    pretrain_by_restoration,
    shuffle_locally,
)
from samdsk.proposals import build_proposal_source
from tests.test_samdsk_experiment import TINY_MODEL, _one_round_experiment, record_trainings


def _images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth colour gradients with a disc: structure a network can learn to restore."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:50, 0:60]
    images = []
    for _ in range(count):
        centre = rng.integers(15, 35, 2)
        disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < 100
        base = np.stack([rows * 4, cols * 3, np.full_like(rows, 90)], axis=-1)
        base[disc] = rng.integers(0, 255, 3)
        images.append(base.clip(0, 255).astype(np.uint8))
    return images


def test_blocks_cover_the_drawn_share_and_no_more_than_one_block_beyond() -> None:
    generator = torch.Generator().manual_seed(0)
    mask = block_mask(16, 64, 64, generator)
    cover = mask.float().mean(dim=(1, 2))
    largest_block = (BLOCK_SIDE[1] * 64) ** 2 / 64**2
    assert (cover >= BLOCK_COVER[0]).all()
    assert (cover <= BLOCK_COVER[1] + largest_block).all()
    assert len(set(cover.tolist())) > 1  # the share is drawn per image


def test_local_shuffle_permutes_pixels_within_each_window_only() -> None:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 18, 22)  # sides not multiples of the window: the rest is kept
    shuffled = shuffle_locally(images, generator)
    side = SHUFFLE_SIDE
    assert not torch.equal(shuffled, images)
    assert torch.equal(shuffled[:, :, 16:], images[:, :, 16:])
    assert torch.equal(shuffled[:, :, :, 20:], images[:, :, :, 20:])
    for top in range(0, 16, side):
        for left in range(0, 20, side):
            before = images[:, :, top : top + side, left : left + side].reshape(3, 3, -1)
            after = shuffled[:, :, top : top + side, left : left + side].reshape(3, 3, -1)
            assert torch.equal(before.sort(dim=-1).values, after.sort(dim=-1).values)
            # one permutation per image, the same for its three channels
            order = before[:, 0].argsort(dim=-1)
            assert torch.equal(
                after.gather(-1, after[:, :1].argsort(dim=-1).expand(-1, 3, -1)),
                before.gather(-1, order[:, None].expand(-1, 3, -1)),
            )


def test_corruption_keeps_shape_and_range_and_changes_the_image() -> None:
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(4, 3, 32, 32)
    corrupted = corrupt(images, generator)
    assert corrupted.shape == images.shape
    assert corrupted.min() >= 0.0 and corrupted.max() <= 1.0
    assert (corrupted - images).abs().mean() > 0.05


def test_restoration_learns_and_its_encoder_loads_into_a_segmentation_model(
    tmp_path: Path,
) -> None:
    # pinned: the repeat below must sum in the same order whatever else uses the cores
    config = replace(TINY_MODEL, batch_size=4, lr=3e-3, cpu_threads=1)
    path = tmp_path / "restored.pt"
    result = pretrain_by_restoration(_images(6), config, path, steps=40)
    assert result.steps == 40 and result.images == 6 and result.path == path
    assert result.final_loss < 0.8 * result.first_loss
    saved = torch.load(path, weights_only=True)
    assert any(key.startswith("decoder.") for key in saved)  # the whole network is kept
    model = build_model(replace(TINY_MODEL, encoder_weights_path=str(path)))
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, saved[f"encoder.{key}"]), key
    assert model.segmentation_head[0].out_channels == 1  # the head is the task's, not RGB
    again = tmp_path / "again.pt"
    pretrain_by_restoration(_images(6), config, again, steps=40)
    repeated = torch.load(again, weights_only=True)
    assert all(torch.equal(saved[key], repeated[key]) for key in saved)  # seeded


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="steps"):
        pretrain_by_restoration(_images(2), TINY_MODEL, tmp_path / "w.pt", steps=0)
    with pytest.raises(ConfigError, match="image"):
        pretrain_by_restoration([], TINY_MODEL, tmp_path / "w.pt", steps=2)
    assert not list(tmp_path.iterdir())


def test_every_training_of_the_experiment_starts_from_the_pretrained_encoder(
    tmp_path: Path, monkeypatch: Any
) -> None:
    trainings = record_trainings(monkeypatch)
    config = _one_round_experiment(tmp_path, arms=("A", "C"), threshold=0.0, pretrain_steps=3)
    path = tmp_path / "out" / "pretrained_restoration.pt"
    messages: list[str] = []
    result = run_experiment(
        config, build_proposal_source("offline"), pretrain_path=path, log=messages.append
    )
    assert path.is_file()
    assert any(m.startswith("pretrained in") for m in messages)
    assert any(m.startswith("training A") and str(path) in m for m in messages)
    assert len(trainings) == 2  # A, then C after its round
    assert all(t.model.encoder_weights_path == str(path) for t in trainings)
    report = write_outputs(result, tmp_path / "out")
    pretraining = report["pretraining"]
    split = result.data.split
    # every image but the test images, whose masks are not used either
    assert pretraining["images"] == len(split.labeled) + len(split.validation) + len(
        split.unlabeled
    )
    assert pretraining["steps"] == 3 and pretraining["path"] == str(path)
    assert report["weights"]["model_encoder"] == str(path)
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["settings"]["pretrain_steps"] == 3


def test_experiment_without_pretraining_reports_none(tmp_path: Path) -> None:
    config = _one_round_experiment(tmp_path, arms=("A",))
    result = run_experiment(config, build_proposal_source("offline"))
    assert result.report()["pretraining"] is None
    assert result.config.model.encoder_weights_path is None


def test_pretraining_needs_somewhere_to_write_and_a_sane_step_count(tmp_path: Path) -> None:
    config = _one_round_experiment(tmp_path, arms=("A",), pretrain_steps=2)
    with pytest.raises(ConfigError, match="pretrain_path"):
        run_experiment(config, build_proposal_source("offline"))
    with pytest.raises(ConfigError, match="pretrain_steps"):
        replace(config, pretrain_steps=-1)


def test_command_line_option() -> None:
    parser = build_parser()
    args = parser.parse_args(["experiment", "--data", "d", "--out", "o", "--pretrain-steps", "50"])
    assert args.pretrain_steps == 50
    assert parser.parse_args(["experiment", "--data", "d", "--out", "o"]).pretrain_steps == 0


def test_pretrain_command_writes_weights_that_train_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for number, image in enumerate(_images(3)):
        Image.fromarray(image).save(data / "images" / f"i{number}.png")
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
        mask[10:30, 10:30] = 255
        Image.fromarray(mask).save(data / "masks" / f"i{number}.png")
    (data / "images" / "notes.txt").write_text("not an image")
    weights = tmp_path / "pretrained.pt"
    options = ["--encoder", "tu-mobilenetv3_small_050", "--size", "64", "--batch-size", "2"]
    argv = ["pretrain", "--images", str(data), "--out", str(weights), "--steps", "3"]
    assert main([*argv, *options]) == 0
    out = capsys.readouterr().out
    assert "pretraining on 3 images" in out and "restoration loss" in out
    checkpoint = tmp_path / "model.pt"
    argv = ["train", "--data", str(data), "--out", str(checkpoint), "--steps", "2"]
    assert main([*argv, *options, "--encoder-weights", str(weights)]) == 0
    assert f"model encoder weights: {weights}" in capsys.readouterr().out  # named before training
    assert main([*argv, *options, "--init-weights", str(weights)]) == 0
    assert f"model weights (encoder and decoder): {weights}" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["pretrain", "--images", str(empty), "--out", str(weights), *options]) == 1
    assert "at least one image" in capsys.readouterr().err
    missing = ["pretrain", "--images", str(tmp_path / "missing"), "--out", str(weights)]
    assert main(missing) == 1
    assert "no image folder" in capsys.readouterr().err


def test_network_transfer_loads_the_decoder_too_and_leaves_a_foreign_head(tmp_path: Path) -> None:
    path = tmp_path / "restored.pt"
    pretrain_by_restoration(_images(4), replace(TINY_MODEL, batch_size=2), path, steps=3)
    saved = torch.load(path, weights_only=True)
    model = build_model(replace(TINY_MODEL, init_weights_path=str(path)))
    state = model.state_dict()
    decoder = [key for key in state if key.startswith("decoder.")]
    assert decoder and all(torch.equal(state[key], saved[key]) for key in decoder)
    assert all(torch.equal(state[k], saved[k]) for k in state if k.startswith("encoder."))
    head = "segmentation_head.0.weight"
    assert state[head].shape[0] == 1 and saved[head].shape[0] == 3  # RGB head left out
    encoder_only = build_model(replace(TINY_MODEL, encoder_weights_path=str(path)))
    assert not torch.equal(encoder_only.state_dict()[decoder[0]], saved[decoder[0]])
    other = tmp_path / "other.pt"
    torch.save({"backbone.weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="no tensor"):
        build_model(replace(TINY_MODEL, init_weights_path=str(other)))
    with pytest.raises(CheckpointError, match="not found"):
        build_model(replace(TINY_MODEL, init_weights_path=str(tmp_path / "missing.pt")))


def test_experiment_can_start_every_arm_from_the_whole_pretrained_network(
    tmp_path: Path, monkeypatch: Any
) -> None:
    trainings = record_trainings(monkeypatch)
    config = _one_round_experiment(
        tmp_path, arms=("A",), pretrain_steps=2, pretrain_transfer="network"
    )
    path = tmp_path / "restored.pt"
    result = run_experiment(config, build_proposal_source("offline"), pretrain_path=path)
    assert [t.model.init_weights_path for t in trainings] == [str(path)]
    assert trainings[0].model.encoder_weights_path is None
    weights = result.report()["weights"]
    assert weights["model_encoder"] == weights["model_decoder"] == str(path)
    with pytest.raises(ConfigError, match="pretrain_transfer"):
        replace(config, pretrain_transfer="decoder")
    args = build_parser().parse_args(
        ["experiment", "--data", "d", "--out", "o", "--pretrain-transfer", "network"]
    )
    assert args.pretrain_transfer == "network"
