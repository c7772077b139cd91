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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from samdsk.errors import ConfigError
from samdsk.model.config import MACHINE_AUGMENTATIONS

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
    test_dice: dict[str, float]

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
