"""Choosing the training perturbation of a data set on its human validation labels.

The strong perturbations (``machine_augment="strong_all"``: hue rotation, stronger colour
jitter, blur, CutMix on every label) lift the supervised model by several Dice points on
dermoscopy and ultrasound, where skin tone, lighting and gain vary between images, and lower
it on colonoscopy, where a polyp's colour is part of what tells it from the mucosa. Which one
a data set needs is therefore chosen per data set: the supervised model is trained under each
candidate and the one whose model scores the best validation Dice is kept for every later
training. A handful of validation images is enough for this choice, unlike for picking a
checkpoint: it is one choice between two policies whose models differ by 5-13 points where it
matters, not a maximum over twenty checkpoints within a point of each other, which follows
the noise of the few images it is taken on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from samdsk.errors import ConfigError
from samdsk.model.config import AUTO_AUGMENT, MACHINE_AUGMENTATIONS, ModelConfig, TrainingSample
from samdsk.model.resume import SnapshotStore
from samdsk.model.train import ProgressCallback, TrainResult, train_model

logger = logging.getLogger(__name__)

# what ``--machine-augment auto`` chooses between, the default first (it wins ties)
AUTO_AUGMENT_CHOICES = ("same", "strong_all")


def check_augment_choices(choices: Sequence[str]) -> None:
    """Raise ``ConfigError`` unless ``choices`` is empty or two or more distinct policies
    that a supervised model can tell apart."""
    if not choices:
        return
    unknown = [c for c in choices if c not in MACHINE_AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"augment choices are some of {MACHINE_AUGMENTATIONS}; got {unknown}")
    if len(set(choices)) != len(choices) or len(choices) < 2:
        raise ConfigError(f"choose among two or more distinct policies; got {list(choices)}")
    if "strong" in choices:
        # "strong" perturbs machine labels only: a model trained on human labels alone is the
        # same under "strong" and "same", so its validation Dice cannot choose between them
        raise ConfigError("'strong' differs from 'same' on machine labels only; use 'strong_all'")


@dataclass(frozen=True)
class AugmentChoice:
    """The policy chosen and, per candidate in the order tried, the validation Dice of the
    supervised model trained under it (None without validation images) and its test Dice
    (reported beside, never used to choose)."""

    chosen: str
    val_dice: dict[str, float | None]
    test_dice: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "val_dice": self.val_dice, "test_dice": self.test_dice}


def choose_augment(val_dice: Mapping[str, float | None]) -> str:
    """The candidate with the highest validation Dice; the first one on a tie or when no
    candidate was validated (the first is the default policy, kept without evidence)."""
    if not val_dice:
        raise ConfigError("no candidate policy to choose from")
    chosen, best = next(iter(val_dice)), None
    for name, value in val_dice.items():
        if value is not None and (best is None or value > best):  # ">": ties keep the first
            chosen, best = name, value
    return chosen


@dataclass
class ChosenTraining:
    """Every model trained for a choice, by policy, and the choice made among them."""

    trained: dict[str, TrainResult]
    choice: AugmentChoice

    @property
    def result(self) -> TrainResult:
        """The chosen model; its ``config.machine_augment`` names the policy it trained under."""
        return self.trained[self.choice.chosen]


def train_choosing_augment(
    train: Sequence[TrainingSample],
    config: ModelConfig,
    *,
    val: Sequence[TrainingSample] = (),
    choices: Sequence[str] = AUTO_AUGMENT_CHOICES,
    progress: ProgressCallback | None = None,
    show_progress_bar: bool = False,
    log: Callable[[str], None] = logger.info,
    snapshots: SnapshotStore | None = None,
) -> ChosenTraining:
    """Train ``config`` under each policy of ``choices`` (its own ``machine_augment``, such
    as ``"auto"``, is replaced) and keep the model of the best validation Dice.

    Without validation images nothing can tell the models apart, so only the first policy
    (the default) is trained: training the others would cost their time and change nothing.
    ``progress(step, steps, loss)`` counts the steps of every training together.
    ``snapshots`` keeps each policy's training under its own name, so that a resumed choice
    goes on from where each training stood (a finished one from its last step).
    """
    check_augment_choices(choices)  # an empty one fails in choose_augment, before any training
    tried = list(choices) if val else list(choices[:1])
    trained: dict[str, TrainResult] = {}
    for index, policy in enumerate(tried):
        log(f"training under machine_augment={policy} ({index + 1} of {len(tried)})")
        trained[policy] = train_model(
            train,
            replace(config, machine_augment=policy),
            val=val,
            progress=None if progress is None else _offset(progress, index, len(tried)),
            show_progress_bar=show_progress_bar,
            snapshots=snapshots,
        )
    val_dice = {policy: result.best_val_dice for policy, result in trained.items()}
    chosen = choose_augment(val_dice)
    shown = ", ".join(f"{p} {'-' if v is None else f'{v:.4f}'}" for p, v in val_dice.items())
    log(
        f"perturbation chosen on {len(val)} validation images: {chosen} (validation Dice {shown})"
        if val
        else f"no validation images: {chosen} kept without trying {list(choices[1:])}"
    )
    return ChosenTraining(trained, AugmentChoice(chosen, val_dice))


def train_as_configured(
    train: Sequence[TrainingSample],
    config: ModelConfig,
    *,
    val: Sequence[TrainingSample] = (),
    progress: ProgressCallback | None = None,
    show_progress_bar: bool = False,
    log: Callable[[str], None] = logger.info,
    snapshots: SnapshotStore | None = None,
) -> tuple[TrainResult, AugmentChoice | None]:
    """The model ``config`` asks for and, for ``machine_augment="auto"``, the choice made
    (``train_choosing_augment``); one ``train_model`` run, and no choice, for a policy."""
    if config.machine_augment != AUTO_AUGMENT:
        trained = train_model(
            train,
            config,
            val=val,
            progress=progress,
            show_progress_bar=show_progress_bar,
            snapshots=snapshots,
        )
        return trained, None
    chosen = train_choosing_augment(
        train,
        config,
        val=val,
        progress=progress,
        show_progress_bar=show_progress_bar,
        log=log,
        snapshots=snapshots,
    )
    return chosen.result, chosen.choice


def _offset(progress: ProgressCallback, index: int, count: int) -> ProgressCallback:
    """``progress`` for the ``index``-th of ``count`` equally long trainings."""

    def report(step: int, steps: int, loss: float) -> None:
        progress(index * steps + step, count * steps, loss)

    return report
