"""Empty share of training batches: machine labels (seldom empty) do not dilute "nothing here"."""

from __future__ import annotations

import numpy as np
import pytest

from samdsk.errors import ConfigError
from samdsk.model.config import ModelConfig, TrainingSample
from samdsk.model.data import ResizedSamples, TrainingBatches, resize_samples


def labels(human_empty: int, human_found: int, machine_found: int) -> ResizedSamples:
    """Human labels (empty ones first, then ones with a region), then machine labels with one."""
    rng = np.random.default_rng(0)
    found = np.zeros((20, 20), dtype=bool)
    found[5:12, 6:14] = True
    kinds = [(False, False)] * human_empty + [(True, False)] * human_found
    kinds += [(True, True)] * machine_found
    made = [
        TrainingSample(
            rng.integers(0, 256, (20, 20, 3), dtype=np.uint8),
            found if has_region else np.zeros((20, 20), dtype=bool),
            machine=machine,
        )
        for has_region, machine in kinds
    ]
    return resize_samples(made, 32, num_classes=1)


def empty_per_step(data: ResizedSamples, batches: TrainingBatches) -> np.ndarray:
    empty = data.masks.reshape(len(data), -1).max(axis=1) == 0
    return np.asarray(empty[batches.order].sum(axis=1))


def test_machine_labels_dilute_the_empty_share_without_it() -> None:
    data = labels(human_empty=5, human_found=5, machine_found=30)
    batches = TrainingBatches(data, steps=40, batch_size=8, seed=0, num_classes=1)
    assert empty_per_step(data, batches).mean() == pytest.approx(8 * 5 / 40)


def test_every_batch_holds_the_human_labels_empty_share() -> None:
    data = labels(human_empty=5, human_found=5, machine_found=30)
    batches = TrainingBatches(
        data, steps=40, batch_size=8, seed=0, num_classes=1, keep_empty_share=True
    )
    assert (empty_per_step(data, batches) == 4).all()
    # The non-empty stream still goes through human and machine labels once per pass.
    drawn = batches.order[data.masks[batches.order].reshape(40, 8, -1).max(axis=2) > 0]
    counts = np.bincount(drawn, minlength=40)[5:]
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1


def test_fractional_empty_share_is_spread_over_the_steps() -> None:
    data = labels(human_empty=1, human_found=2, machine_found=12)
    batches = TrainingBatches(
        data, steps=30, batch_size=4, seed=1, num_classes=1, keep_empty_share=True
    )
    per_step = empty_per_step(data, batches)
    assert set(per_step.tolist()) <= {1, 2}  # 4 / 3 empty slots a step
    assert per_step.sum() == 40


@pytest.mark.parametrize(
    ("human_empty", "human_found", "machine_found"),
    [(3, 3, 0), (0, 4, 6), (4, 0, 6)],  # no machine labels; humans all found; humans all empty
)
def test_plain_order_when_there_is_no_share_to_keep(
    human_empty: int, human_found: int, machine_found: int
) -> None:
    """Without machine labels (round 0) the batches are those of a run without the setting."""
    data = labels(human_empty, human_found, machine_found)
    plain = TrainingBatches(data, steps=6, batch_size=4, seed=3, num_classes=1)
    kept = TrainingBatches(
        data, steps=6, batch_size=4, seed=3, num_classes=1, keep_empty_share=True
    )
    assert np.array_equal(plain.order, kept.order)


def test_cannot_be_combined_with_a_human_share() -> None:
    with pytest.raises(ConfigError, match="keep_empty_share"):
        ModelConfig(keep_empty_share=True, human_share=0.5)
    with pytest.raises(ValueError, match="keep_empty_share"):
        TrainingBatches(
            labels(1, 1, 1),
            steps=1,
            batch_size=2,
            seed=0,
            num_classes=1,
            human_share=0.5,
            keep_empty_share=True,
        )


def test_setting_round_trips_and_must_be_a_bool() -> None:
    config = ModelConfig(keep_empty_share=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="keep_empty_share must be a bool"):
        ModelConfig(keep_empty_share=1)  # type: ignore[arg-type]
