"""Strong perturbations of machine-labelled samples (noisy-student training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samdsk.cli import build_parser, model_config
from samdsk.errors import ConfigError
from samdsk.model import train_model
from samdsk.model.config import ModelConfig, TrainingSample
from samdsk.model.data import TrainingBatches, resize_samples
from samdsk.model.strong_augment import cutmix, random_blur, rotate_hue, strong_perturbation


def random_batch(count: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, size, size, generator=generator)
    masks = (torch.rand(count, size, size, generator=generator) > 0.5).long()
    return images, masks


def test_a_batch_without_machine_labels_is_returned_as_given_and_draws_nothing() -> None:
    images, masks = random_batch(4)
    generator = torch.Generator().manual_seed(7)
    out_images, out_masks = strong_perturbation(
        images, masks, torch.zeros(4, dtype=torch.bool), generator
    )
    assert out_images is images and out_masks is masks
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(7).get_state())


def test_only_the_machine_labelled_samples_change() -> None:
    images, masks = random_batch(6)
    selected = torch.tensor([True, False, True, True, False, True])
    out_images, out_masks = strong_perturbation(
        images, masks, selected, torch.Generator().manual_seed(1)
    )
    assert out_images.shape == images.shape and out_images.dtype == images.dtype
    assert out_masks.shape == masks.shape and out_masks.dtype == masks.dtype
    assert out_images.min() >= 0.0 and out_images.max() <= 1.0
    for i in torch.nonzero(~selected).flatten().tolist():
        assert torch.equal(out_images[i], images[i]) and torch.equal(out_masks[i], masks[i])
    assert all(not torch.equal(out_images[i], images[i]) for i in torch.nonzero(selected).flatten())
    # The inputs are not modified in place.
    again, _ = random_batch(6)
    assert torch.equal(images, again)


def test_hue_rotation_keeps_luma_and_grey_and_undoes_itself() -> None:
    colours = torch.tensor([[0.8, 0.5, 0.3], [0.5, 0.5, 0.5], [0.4, 0.45, 0.6]])
    images = colours[:, :, None, None].expand(3, 3, 4, 4).contiguous()
    turned = rotate_hue(images, torch.tensor([25.0, 25.0, -25.0]))
    luma = torch.tensor([0.299, 0.587, 0.114])
    assert torch.allclose(
        torch.einsum("c,bchw->bhw", luma, turned),
        torch.einsum("c,bchw->bhw", luma, images),
        atol=1e-5,
    )
    assert torch.allclose(turned[1], images[1], atol=1e-6)  # grey has no hue to turn
    assert not torch.allclose(turned[0], images[0], atol=0.02)  # orange turns
    back = rotate_hue(turned, torch.tensor([-25.0, -25.0, 25.0]))
    assert torch.allclose(back, images, atol=1e-5)
    assert torch.allclose(rotate_hue(images, torch.zeros(3)), images, atol=1e-6)


def test_blur_smooths_some_images_keeps_the_others_and_keeps_flat_ones_flat() -> None:
    images, _ = random_batch(16, seed=3)
    blurred = random_blur(images, torch.Generator().manual_seed(2))
    unchanged = [torch.allclose(blurred[i], images[i], atol=1e-6) for i in range(16)]
    assert 0 < sum(unchanged) < 16  # each image is blurred with probability 0.5

    def roughness(x: torch.Tensor) -> float:
        return float((x[..., 1:] - x[..., :-1]).abs().mean())

    for i in range(16):
        if not unchanged[i]:
            assert roughness(blurred[i]) < roughness(images[i])
    flat = torch.full((4, 3, 16, 16), 0.3)
    assert torch.allclose(random_blur(flat, torch.Generator().manual_seed(0)), flat, atol=1e-6)


def test_cutmix_moves_image_and_mask_together_in_one_box() -> None:
    """Sample i is filled with value i in image and mask: after CutMix every pixel's image
    value still equals its mask value, and pasted pixels form one rectangle per sample."""
    count, size = 8, 24
    values = torch.arange(count)
    images = values[:, None, None, None].float().expand(count, 3, size, size).contiguous()
    masks = values[:, None, None].expand(count, size, size).contiguous()
    mixed_images, mixed_masks = cutmix(images, masks, torch.Generator().manual_seed(4))
    assert torch.equal(mixed_images[:, 0].long(), mixed_masks)
    pasted_any = False
    for i in range(count):
        foreign = mixed_masks[i] != i
        if foreign.any():
            pasted_any = True
            rows = torch.nonzero(foreign.any(dim=1)).flatten()
            cols = torch.nonzero(foreign.any(dim=0)).flatten()
            box = foreign[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert box.all()  # a filled rectangle
            assert 0.15 <= foreign.float().mean() <= 0.55
            assert len(torch.unique(mixed_masks[i][foreign])) == 1  # from one partner
    assert pasted_any


def tiny_samples(humans: int, machines: int) -> list[TrainingSample]:
    rng = np.random.default_rng(0)
    return [
        TrainingSample(
            rng.integers(0, 256, (20, 20, 3), dtype=np.uint8),
            rng.random((20, 20)) > 0.5,
            machine=i >= humans,
        )
        for i in range(humans + machines)
    ]


def test_strong_batches_equal_plain_ones_on_human_slots() -> None:
    data = resize_samples(tiny_samples(3, 5), 32, num_classes=1)
    plain = TrainingBatches(data, steps=5, batch_size=4, seed=2, num_classes=1)
    strong = TrainingBatches(
        data, steps=5, batch_size=4, seed=2, num_classes=1, machine_augment="strong"
    )
    machine_slots_differ = False
    for step in range(5):
        plain_inputs, plain_targets, _ = plain[step]
        strong_inputs, strong_targets, _ = strong[step]
        machine = torch.from_numpy(data.machine[plain.order[step]])
        assert torch.equal(plain_inputs[~machine], strong_inputs[~machine])
        assert torch.equal(plain_targets[~machine], strong_targets[~machine])
        machine_slots_differ |= not torch.equal(plain_inputs[machine], strong_inputs[machine])
    assert machine_slots_differ


def test_human_labels_alone_train_the_same_model_either_way() -> None:
    """Arm A (no machine labels) does not move when machine_augment is strong."""
    samples = tiny_samples(4, 0)
    config = ModelConfig(encoder="resnet18", input_size=32, steps=2, batch_size=2, device="cpu")
    plain = train_model(samples, config)
    strong = train_model(samples, ModelConfig(**{**config.to_dict(), "machine_augment": "strong"}))
    assert [h["loss"] for h in plain.history] == [h["loss"] for h in strong.history]


def test_bad_machine_augment_is_refused_and_the_cli_passes_it_on() -> None:
    with pytest.raises(ConfigError, match="machine_augment"):
        ModelConfig(machine_augment="wild")
    with pytest.raises(ValueError, match="machine_augment"):
        TrainingBatches(
            resize_samples(tiny_samples(1, 1), 32, 1),
            steps=1,
            batch_size=2,
            seed=0,
            num_classes=1,
            machine_augment="wild",
        )
    parser = build_parser()
    args = parser.parse_args(
        ["experiment", "--data", "d", "--out", "o", "--machine-augment", "strong"]
    )
    assert model_config(args).machine_augment == "strong"
    assert (
        model_config(parser.parse_args(["train", "--data", "d", "--out", "o"])).machine_augment
        == "same"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "d", "--out", "o", "--machine-augment", "wild"])


def test_strong_all_perturbs_human_labels_too() -> None:
    data = resize_samples(tiny_samples(4, 0), 32, num_classes=1)
    plain = TrainingBatches(data, steps=2, batch_size=4, seed=1, num_classes=1)
    every = TrainingBatches(
        data, steps=2, batch_size=4, seed=1, num_classes=1, machine_augment="strong_all"
    )
    plain_inputs, _, _ = plain[0]
    every_inputs, _, _ = every[0]
    assert all(not torch.equal(plain_inputs[i], every_inputs[i]) for i in range(4))
