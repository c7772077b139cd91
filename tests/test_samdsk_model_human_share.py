"""Human share of training batches: human labels keep their share however many machine ones join."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samdsk.errors import ConfigError
from samdsk.model.config import ModelConfig, TrainingSample
from samdsk.model.data import ResizedSamples, TrainingBatches, resize_samples


def samples(humans: int, machines: int) -> ResizedSamples:
    """Tiny samples; the first ``humans`` are human labels, the rest machine labels."""
    rng = np.random.default_rng(0)
    made = [
        TrainingSample(
            rng.integers(0, 256, (20, 20, 3), dtype=np.uint8),
            rng.random((20, 20)) > 0.5,
            machine=i >= humans,
        )
        for i in range(humans + machines)
    ]
    return resize_samples(made, 32, num_classes=1)


def test_resized_samples_remember_which_labels_are_machine_made() -> None:
    assert samples(2, 3).machine.tolist() == [False, False, True, True, True]


def test_no_share_draws_from_all_samples_as_before() -> None:
    """Share 0 keeps the plain order: concatenated permutations of every sample."""
    data = samples(3, 10)
    batches = TrainingBatches(data, steps=7, batch_size=4, seed=5, num_classes=1)
    generator = torch.Generator().manual_seed(5)
    expected = torch.cat([torch.randperm(13, generator=generator) for _ in range(3)])[:28]
    assert batches.order.reshape(-1).tolist() == expected.tolist()


def test_half_share_puts_human_labels_in_half_of_every_batch() -> None:
    data = samples(3, 40)
    batches = TrainingBatches(data, steps=30, batch_size=8, seed=1, num_classes=1, human_share=0.5)
    human = ~data.machine[batches.order]
    assert (human.sum(axis=1) == 4).all()
    # Each stream is a sequence of permutations: every human label appears once per pass.
    drawn = batches.order[human]
    assert sorted(drawn[:3].tolist()) == [0, 1, 2]
    counts = np.bincount(drawn, minlength=3)[:3]
    assert counts.max() - counts.min() <= 1
    machine_counts = np.bincount(batches.order[~human], minlength=43)[3:]
    assert machine_counts.max() - machine_counts.min() <= 1 and machine_counts.sum() == 120


def test_fractional_share_is_spread_evenly_over_the_steps() -> None:
    data = samples(4, 20)
    batches = TrainingBatches(data, steps=50, batch_size=4, seed=2, num_classes=1, human_share=0.3)
    per_step = (~data.machine[batches.order]).sum(axis=1)
    assert set(per_step.tolist()) <= {1, 2}  # 0.3 x 4 = 1.2 human slots a step
    assert per_step.sum() == 60


def test_share_is_ignored_without_both_kinds_of_label() -> None:
    plain = TrainingBatches(samples(5, 0), steps=6, batch_size=4, seed=3, num_classes=1)
    shared = TrainingBatches(
        samples(5, 0), steps=6, batch_size=4, seed=3, num_classes=1, human_share=0.5
    )
    assert np.array_equal(plain.order, shared.order)


def test_batches_follow_the_order_and_carry_the_weights() -> None:
    made = [
        TrainingSample(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool)),
        TrainingSample(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool), 0.5, machine=True),
    ]
    data = resize_samples(made, 32, num_classes=1)
    batches = TrainingBatches(data, steps=3, batch_size=2, seed=0, num_classes=1, human_share=0.5)
    for step in range(3):
        _, targets, weights = batches[step]
        assert weights.tolist() == [1.0, 0.5]  # human slot first, then the machine label's
        assert targets[0].sum() == 0 and targets[1].sum() == 32 * 32


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_shares_are_refused(share: float) -> None:
    with pytest.raises(ConfigError, match="human_share"):
        ModelConfig(human_share=share)
    with pytest.raises(ValueError, match="human_share"):
        TrainingBatches(
            samples(1, 1), steps=1, batch_size=2, seed=0, num_classes=1, human_share=share
        )


def test_machine_flag_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="machine"):
        TrainingSample(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), bool), machine=1)  # type: ignore[arg-type]
