"""A training stopped part way goes on from its snapshot and ends where the uninterrupted
training ends: same losses, same validation, same weights."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch

from samdsk.augment_choice import train_choosing_augment
from samdsk.errors import CheckpointError
from samdsk.model import TrainResult, train_model
from samdsk.model.resume import TrainingState
from tests.test_samdsk_model import TINY, disc_samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = replace(TINY, steps=8, val_every=3, min_val_for_selection=1)


class Stopped(Exception):
    """What the store raises after saving, as a worker's stop would."""


class MemoryStore:
    """Snapshots kept as bytes (as a worker stores them), saved at the last step and at
    ``stop_at`` (step of the training named ``stop_in``), where that training is then
    stopped, once."""

    def __init__(self, stop_at: int | None = None, stop_in: str = CONFIG.machine_augment) -> None:
        self.saved: dict[str, bytes] = {}
        self.stop_at, self.stop_in = stop_at, stop_in
        self.offers = 0

    def load(self, name: str) -> TrainingState | None:
        data = self.saved.get(name)
        return None if data is None else TrainingState.from_bytes(data)

    def offer(
        self, name: str, step: int, steps: int, snapshot: Callable[[], TrainingState]
    ) -> None:
        self.offers += 1
        stop = name == self.stop_in and step == self.stop_at
        if stop or step == steps:
            self.saved[name] = snapshot().to_bytes()
        if stop:
            self.stop_at = None
            raise Stopped(f"{name} stopped after step {step}")


def _same(first: TrainResult, second: TrainResult) -> None:
    assert second.history == first.history
    assert second.best_val_dice == first.best_val_dice
    for (name, one), two in zip(
        first.model.state_dict().items(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(one, two), name


def test_a_stopped_training_goes_on_to_the_same_end() -> None:
    train, val = disc_samples(6, 64, seed=1), disc_samples(3, 64, seed=2)
    whole = train_model(train, CONFIG, val=val)
    store = MemoryStore(stop_at=4)
    with pytest.raises(Stopped):
        train_model(train, CONFIG, val=val, snapshots=store)
    steps: list[int] = []
    resumed = train_model(
        train, CONFIG, val=val, snapshots=store, progress=lambda s, _t, _l: steps.append(s)
    )
    assert steps == [5, 6, 7, 8]  # the first four are not trained again
    _same(whole, resumed)


def test_a_finished_snapshot_gives_the_result_without_training() -> None:
    train = disc_samples(4, 64, seed=3)
    store = MemoryStore()
    first = train_model(train, CONFIG, snapshots=store)
    steps: list[int] = []
    again = train_model(train, CONFIG, snapshots=store, progress=lambda s, _t, _l: steps.append(s))
    assert steps == [] and store.offers == CONFIG.steps
    _same(first, again)


@pytest.mark.parametrize("change", ["labels", "settings"])
def test_a_snapshot_of_other_labels_or_settings_is_not_gone_on_from(
    change: str, caplog: pytest.LogCaptureFixture
) -> None:
    train = disc_samples(4, 64, seed=4)
    store = MemoryStore(stop_at=5)
    with pytest.raises(Stopped):
        train_model(train, CONFIG, snapshots=store)
    config = replace(CONFIG, lr=CONFIG.lr / 2) if change == "settings" else CONFIG
    if change == "labels":
        train = [replace(train[0], mask=~train[0].mask), *train[1:]]
    steps: list[int] = []
    with caplog.at_level(logging.WARNING, logger="samdsk.model.resume"):
        fresh = train_model(
            train, config, snapshots=store, progress=lambda s, _t, _l: steps.append(s)
        )
    assert steps == list(range(1, 9))
    assert "other settings or labels: training from step 0" in caplog.text
    _same(train_model(train, config), fresh)


def test_an_unreadable_snapshot_is_an_error_and_is_not_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(CheckpointError, match="cannot read"):
        TrainingState.from_bytes(b"not a snapshot")
    buffer = io.BytesIO()
    torch.save({"format": "other"}, buffer)
    with pytest.raises(CheckpointError, match=r"not a samdsk\.training-snapshot/1"):
        TrainingState.from_bytes(buffer.getvalue())
    train = disc_samples(4, 64, seed=5)
    store = MemoryStore()
    store.saved[CONFIG.machine_augment] = b"\x00garbage"
    with caplog.at_level(logging.WARNING, logger="samdsk.model.resume"):
        fresh = train_model(train, CONFIG, snapshots=store)
    assert "unreadable" in caplog.text
    _same(train_model(train, CONFIG), fresh)


def test_a_stopped_choice_of_perturbation_goes_on_per_policy() -> None:
    """Under "auto", the policies trained before the stop are not trained again."""
    train, val = disc_samples(6, 64, seed=6), disc_samples(3, 64, seed=7)
    choices = ("same", "strong_all")
    whole = train_choosing_augment(train, CONFIG, val=val, choices=choices)
    store = MemoryStore(stop_at=3, stop_in="strong_all")
    with pytest.raises(Stopped):
        train_choosing_augment(train, CONFIG, val=val, choices=choices, snapshots=store)
    steps: list[int] = []
    resumed = train_choosing_augment(
        train,
        CONFIG,
        val=val,
        choices=choices,
        snapshots=store,
        progress=lambda s, _t, _l: steps.append(s),
    )
    # progress counts both trainings' steps: the first is done, the second goes on at 4
    assert steps == [12, 13, 14, 15, 16]
    assert resumed.choice == whole.choice
    for policy in choices:
        _same(whole.trained[policy], resumed.trained[policy])
