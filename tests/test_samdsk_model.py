"""The segmentation model: factory, training, inference and checkpoints, on tiny CPU models."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from samdsk.errors import CheckpointError, ConfigError, ShapeError
from samdsk.model import (
    ModelConfig,
    TrainingSample,
    build_model,
    load_checkpoint,
    predict_probabilities,
    save_checkpoint,
    train_model,
)
from samdsk.model.loss import dice_per_image, per_sample_loss, weighted_loss
from samdsk.model.threads import (
    busy_cores_elsewhere,
    cpu_thread_budget,
    cpu_threads_for,
    usable_cores,
)

# A timm test network: a real ResNet, small enough that a training step takes milliseconds.
TINY = ModelConfig(encoder="tu-test_resnet", input_size=64, batch_size=4, steps=3, val_every=20)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def disc_samples(count: int, size: int, seed: int) -> list[TrainingSample]:
    """Bright noisy discs of random radius and position on a dark noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    samples = []
    for _ in range(count):
        radius = rng.uniform(0.12, 0.25) * size
        cy, cx = rng.uniform(radius, size - radius, 2)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        image[mask] = rng.integers(170, 255, (int(mask.sum()), 3), dtype=np.uint8)
        samples.append(TrainingSample(image, mask))
    return samples


def dice(probabilities: np.ndarray, mask: np.ndarray) -> float:
    predicted = probabilities[0] > 0.5
    return float(2 * (predicted & mask).sum() / max(predicted.sum() + mask.sum(), 1))


@pytest.mark.parametrize(
    ("arch", "encoder"),
    [("Unet", "resnet18"), ("fpn", "tu-test_resnet"), ("DeepLabV3Plus", "tu-test_resnet")],
)
def test_build_model_gives_one_logit_map_per_class(arch: str, encoder: str) -> None:
    model = build_model(ModelConfig(arch=arch, encoder=encoder, num_classes=2)).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 2, 64, 64)


def test_unknown_names_are_rejected_with_the_valid_choices() -> None:
    with pytest.raises(ConfigError, match="UnetPlusPlus"):
        build_model(ModelConfig(arch="UNetXL"))
    with pytest.raises(ConfigError, match="resnet34"):
        build_model(ModelConfig(encoder="resnet35"))
    with pytest.raises(ConfigError, match="no_such_net"):
        build_model(ModelConfig(encoder="tu-no_such_net"))


def test_config_round_trips_and_rejects_bad_settings() -> None:
    config = ModelConfig(arch="FPN", encoder_weights_path="/w.pth", lr=3e-4, amp=False)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="valid keys"):
        ModelConfig.from_dict({"archh": "Unet"})
    for bad in ({"input_size": 100}, {"steps": 0}, {"lr": -1.0}, {"batch_size": "8"}):
        with pytest.raises(ConfigError):
            ModelConfig.from_dict(bad)
    assert ModelConfig.from_dict({"cpu_threads": 2}).cpu_threads == 2
    for threads in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="cpu_threads"):
            ModelConfig.from_dict({"cpu_threads": threads})


def test_samples_with_broken_arrays_are_rejected() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ShapeError):
        TrainingSample(image.astype(np.float32), np.zeros((8, 8), bool))
    with pytest.raises(ShapeError):
        TrainingSample(image, np.zeros((8, 9), bool))
    with pytest.raises(ConfigError):
        TrainingSample(image, np.zeros((8, 8), bool), weight=-1.0)
    with pytest.raises(ShapeError, match="num_classes"):
        train_model([TrainingSample(image, np.full((8, 8), 255, np.uint8))], TINY)


def test_training_learns_discs_and_predicts_them_at_original_size() -> None:
    config = ModelConfig(
        encoder="tu-test_resnet", input_size=64, batch_size=4, steps=40, val_every=20
    )
    calls: list[tuple[int, int, float]] = []
    result = train_model(
        disc_samples(16, 64, seed=0),
        config,
        val=disc_samples(8, 64, seed=1),
        progress=lambda step, total, loss: calls.append((step, total, loss)),
    )
    assert result.best_val_dice is not None and result.best_val_dice > 0.8
    assert [h["step"] for h in result.history if "val_dice" in h] == [20.0, 40.0]
    assert [c[:2] for c in calls] == [(s, 40) for s in range(1, 41)]
    assert calls[-1][2] < calls[0][2]
    assert not result.model.training
    # Unseen images of another size: the maps come back at that size and still fit.
    test = disc_samples(4, 96, seed=2)
    maps = predict_probabilities(result.model, [s.image for s in test], config)
    assert np.mean([dice(p, s.mask) for p, s in zip(maps, test, strict=True)]) > 0.8


def test_few_validation_images_keep_the_final_weights_not_the_best_checkpoint() -> None:
    train, val = disc_samples(6, 64, seed=0), disc_samples(2, 64, seed=1)
    config = ModelConfig.from_dict({**TINY.to_dict(), "steps": 4, "val_every": 1})
    final = train_model(train, config)  # no validation: the final weights
    few = train_model(train, config, val=val)  # 2 < min_val_for_selection (5)
    val_dice = [h["val_dice"] for h in few.history]
    assert few.best_val_dice == val_dice[-1]
    for name, tensor in final.model.state_dict().items():
        assert torch.equal(tensor, few.model.state_dict()[name]), name
    chosen = ModelConfig.from_dict({**config.to_dict(), "min_val_for_selection": 2})
    assert train_model(train, chosen, val=val).best_val_dice == max(val_dice)
    with pytest.raises(ConfigError, match="min_val_for_selection"):
        ModelConfig(min_val_for_selection=-1)


def test_same_seed_gives_the_same_losses_and_another_seed_does_not() -> None:
    train = disc_samples(6, 64, seed=0)
    first = train_model(train, TINY).history
    assert train_model(train, TINY).history == first
    other = ModelConfig.from_dict({**TINY.to_dict(), "seed": 1})
    assert train_model(train, other).history != first


def test_loader_workers_do_not_change_the_batches() -> None:
    train = disc_samples(6, 64, seed=0)
    inline = train_model(train, TINY).history
    workers = ModelConfig.from_dict({**TINY.to_dict(), "num_workers": 1})
    assert train_model(train, workers).history == inline


def test_samples_of_weight_zero_do_not_influence_training(
    capsys: pytest.CaptureFixture[str],
) -> None:
    human = disc_samples(6, 64, seed=0)
    machine = [TrainingSample(s.image, ~s.mask, weight=0.0) for s in disc_samples(4, 64, 5)]
    alone = train_model(human, TINY)
    mixed = train_model(human + machine, TINY, show_progress_bar=True)
    assert mixed.history == alone.history
    assert "3/3" in capsys.readouterr().err  # the progress bar reached the last step
    with pytest.raises(ConfigError, match="weight > 0"):
        train_model(machine, TINY)


def test_weighted_loss_scales_each_sample_and_ignores_weight_zero() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, generator=generator, requires_grad=True)
    targets = (torch.rand(2, 1, 8, 8, generator=generator) > 0.5).float()
    loss = weighted_loss(logits, targets, torch.tensor([1.0, 0.0]))
    assert torch.allclose(loss, per_sample_loss(logits, targets)[0] / 2)
    torch.autograd.backward(loss)
    assert logits.grad is not None
    assert torch.all(logits.grad[1] == 0) and torch.any(logits.grad[0] != 0)
    half = weighted_loss(logits, targets, torch.tensor([0.5, 0.5]))
    assert torch.allclose(half, per_sample_loss(logits, targets).mean() / 2)


def test_validation_dice_counts_empty_against_empty_as_perfect() -> None:
    targets = torch.zeros(3, 1, 4, 4)
    targets[1, 0, :2] = 1.0
    targets[2, 0, :2] = 1.0
    logits = torch.full((3, 1, 4, 4), -5.0)
    logits[1, 0, :2] = 5.0  # exact
    logits[2, 0, :1] = 5.0  # half of the target: Dice 2 * 4 / (4 + 8)
    assert dice_per_image(logits, targets).tolist() == pytest.approx([1.0, 1.0, 2 / 3])


def test_predictions_have_original_size_class_channels_and_unit_range() -> None:
    config = ModelConfig.from_dict({**TINY.to_dict(), "num_classes": 2})
    model = build_model(config)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(50, 70), (33, 90)]]
    maps = predict_probabilities(model, images, config, batch_size=1)
    assert [m.shape for m in maps] == [(2, 50, 70), (2, 33, 90)]
    assert all(m.dtype == np.float32 and m.min() >= 0.0 and m.max() <= 1.0 for m in maps)
    assert model.training  # the caller's mode is kept
    with pytest.raises(ShapeError):
        predict_probabilities(model, [np.zeros((8, 8), np.uint8)], config)


def test_flip_tta_averages_the_logits_of_the_image_and_its_mirror_images() -> None:
    model = build_model(TINY).eval()
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    views = [image, image[:, ::-1], image[::-1]]
    # At input_size no resizing happens, so each view's map is its logits through a sigmoid.
    plain = [predict_probabilities(model, [np.ascontiguousarray(v)], TINY)[0] for v in views]
    unmirrored = [plain[0], plain[1][:, :, ::-1], plain[2][:, ::-1]]
    logit = [np.log(m / (1 - m)) for m in unmirrored]
    expected = 1 / (1 + np.exp(-np.mean(logit, axis=0)))
    tta = predict_probabilities(model, [image], TINY, flip_tta=True)[0]
    np.testing.assert_allclose(tta, expected, atol=2e-5)
    assert not np.allclose(tta, plain[0], atol=1e-4)  # the mirror images do change the map


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    result = train_model(disc_samples(4, 64, seed=0), TINY)
    path = tmp_path / "models" / "round1.pt"
    save_checkpoint(path, result)
    model, config = load_checkpoint(path)
    assert config == TINY
    images = [s.image for s in disc_samples(2, 80, seed=3)]
    before = predict_probabilities(result.model, images, TINY)
    after = predict_probabilities(model, images, config)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_broken_checkpoints_raise_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02not a checkpoint" * 10)
    with pytest.raises(CheckpointError):
        load_checkpoint(corrupt)
    # Weights of one architecture stored under the config of another.
    mismatched = tmp_path / "mismatched.pt"
    save_checkpoint(
        mismatched, build_model(TINY), ModelConfig.from_dict({**TINY.to_dict(), "arch": "FPN"})
    )
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(mismatched)
    with pytest.raises(CheckpointError, match="init_state"):
        train_model(disc_samples(2, 64, 0), TINY, init_state={"foo": torch.zeros(1)})


def encoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    encoder = model.encoder
    assert isinstance(encoder, torch.nn.Module)
    return encoder.state_dict()


def test_encoder_weights_are_loaded_from_a_local_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def config(path: Path) -> ModelConfig:
        return ModelConfig(arch="Unet", encoder="resnet18", encoder_weights_path=str(path))

    caplog.set_level(logging.INFO, logger="samdsk.model")
    source = encoder_state(build_model(ModelConfig(arch="FPN", encoder="resnet18")))
    encoder_file = tmp_path / "resnet18_encoder.pth"
    torch.save(source, encoder_file)
    # A whole smp model's state ("encoder.*" keys) and a classifier's (an extra "fc" head).
    whole_model_file = tmp_path / "whole_model.pth"
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in source.items()}}, whole_model_file)
    classifier_file = tmp_path / "classifier.pth"
    torch.save({**source, "fc.weight": torch.zeros(1000, 512)}, classifier_file)
    for path in (encoder_file, whole_model_file, classifier_file):
        loaded = encoder_state(build_model(config(path)))
        for key, value in source.items():
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert "1 unexpected" in caplog.text
    wrong_shape = tmp_path / "wrong_shape.pth"
    torch.save({**source, "conv1.weight": torch.zeros(8, 3, 3, 3)}, wrong_shape)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"head.weight": torch.zeros(3)}, unrelated)
    for bad in (wrong_shape, unrelated, tmp_path / "missing.pth"):
        with pytest.raises(CheckpointError):
            build_model(config(bad))


def test_random_encoder_init_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="samdsk.model")
    build_model(TINY)
    assert "encoder weights: random init (no local ImageNet weights given)" in caplog.text


def test_config_import_does_not_pull_in_torch() -> None:
    code = "import sys, samdsk.model as m; m.ModelConfig(); print('torch' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "False"


def test_thread_budget_leaves_cores_that_other_processes_use() -> None:
    cores = usable_cores()
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    with subprocess.Popen([sys.executable, "-c", spin]) as busy:
        time.sleep(0.3)  # let it start spinning
        measured = busy_cores_elsewhere(cores, seconds=0.5)
        busy.kill()
    assert measured > 0.3
    torch.set_num_threads(1)
    assert cpu_thread_budget() == 1  # a caller's limit is respected without sampling
    torch.set_num_threads(len(cores))
    assert 1 <= cpu_thread_budget(num_workers=1, sample=False) == max(1, len(cores) - 1)


def test_cpu_threads_for_sets_the_budget_on_the_cpu_only_and_restores_the_count() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with cpu_threads_for(torch.device("cuda")) as threads:
            assert threads == torch.get_num_threads() == 1  # a GPU run leaves it alone
        torch.set_num_threads(len(usable_cores()))
        with pytest.raises(RuntimeError), cpu_threads_for(torch.device("cpu"), 1) as threads:
            assert threads == torch.get_num_threads()
            assert 1 <= threads <= cpu_thread_budget(1, sample=False)  # less where cores are busy
            raise RuntimeError("the count comes back after an error too")
        assert torch.get_num_threads() == len(usable_cores())
    finally:
        torch.set_num_threads(before)


def test_a_pinned_thread_count_holds_however_busy_the_cores_are() -> None:
    before = torch.get_num_threads()
    cores = usable_cores()
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    with subprocess.Popen([sys.executable, "-c", spin]) as busy:
        time.sleep(0.3)
        with cpu_threads_for(torch.device("cpu"), pinned=len(cores)) as threads:
            assert threads == torch.get_num_threads() == len(cores)  # not sampled down
        with cpu_threads_for(torch.device("cuda"), pinned=len(cores) + 1) as threads:
            assert threads == before  # a GPU job leaves the count alone
        busy.kill()
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="pinned"), cpu_threads_for(torch.device("cpu"), 0, 0):
        pass
