"""Which peer models may join the chosen model's maps in a round's matching.

With peer maps, round 1 matches the proposals against the mean of the maps of the supervised
models trained under every perturbation policy, not only the chosen one: where the models
agree the mean stays high, where they disagree it drops, so the doubtful images score lower.
That holds while the peer is about as good as the chosen model. A peer clearly worse lowers
every score instead: on Kvasir-SEG, one CPU's ``strong_all`` peer had validation Dice 0.444
against the chosen model's 0.622, and only 2 of 630 pool images cleared the 0.85 threshold
where 109 did without it (C - A -0.1 against +4.7 points); on another CPU the peer's 0.515
against 0.594 let 30 through and lifted C - A from +3.8 to +6.0.

So each peer is screened on the human validation images, image by image against the chosen
model: it is left out when the validation images show it worse, that is when the one-sided
95 % upper bound of the mean per-image difference (peer - chosen, Student's t) is below 0.
Fewer than ``MIN_IMAGES_TO_SCREEN`` validation images cannot show that, and the peer stays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from samdsk.model.config import TrainingSample
from samdsk.model.data import resize_samples
from samdsk.model.factory import resolve_device
from samdsk.model.threads import cpu_threads_for
from samdsk.model.train import TrainResult, validation_dice_per_image

MIN_IMAGES_TO_SCREEN = 3
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PeerScreen:
    """The verdict on one peer: kept or not, on how many validation images, the mean
    per-image Dice difference peer - chosen and its one-sided upper bound (None with fewer
    than ``MIN_IMAGES_TO_SCREEN`` images)."""

    policy: str
    kept: bool
    images: int
    mean_difference: float | None
    upper_bound: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "kept": self.kept,
            "images": self.images,
            "mean_difference": self.mean_difference,
            "upper_bound": self.upper_bound,
        }

    def describe(self) -> str:
        if self.mean_difference is None or self.upper_bound is None:
            return (
                f"peer {self.policy} kept: {self.images} validation images "
                f"(< {MIN_IMAGES_TO_SCREEN}) cannot show it worse"
            )
        verdict = "kept" if self.kept else "left out: the validation images show it worse"
        return (
            f"peer {self.policy} {verdict} (Dice peer - chosen {self.mean_difference:+.3f} "
            f"over {self.images} images, {CONFIDENCE:.0%} upper bound {self.upper_bound:+.3f})"
        )


def screen_peer(policy: str, chosen_dice: np.ndarray, peer_dice: np.ndarray) -> PeerScreen:
    """The verdict from per-image validation Dice of the chosen model and the peer (same
    images, same order)."""
    if chosen_dice.shape != peer_dice.shape or chosen_dice.ndim != 1:
        raise ValueError(
            f"per-image Dice of the same images expected; got {chosen_dice.shape} "
            f"and {peer_dice.shape}"
        )
    images = len(chosen_dice)
    if images < MIN_IMAGES_TO_SCREEN:
        return PeerScreen(policy, True, images, None, None)
    differences = peer_dice.astype(np.float64) - chosen_dice.astype(np.float64)
    mean = float(differences.mean())
    spread = float(differences.std(ddof=1)) / math.sqrt(images)
    upper = mean + float(stats.t.ppf(CONFIDENCE, images - 1)) * spread
    return PeerScreen(policy, upper >= 0.0, images, mean, upper)


def per_image_validation_dice(trained: TrainResult, val: Sequence[TrainingSample]) -> np.ndarray:
    """``trained``'s Dice on each validation sample, at its input size as in training."""
    config = trained.config
    data = resize_samples(val, config.input_size, config.num_classes)
    with cpu_threads_for(resolve_device(trained.device), 0, config.cpu_threads):
        return validation_dice_per_image(trained.model, data, config)


def screen_peers(
    chosen: TrainResult, peers: Mapping[str, TrainResult], val: Sequence[TrainingSample]
) -> tuple[dict[str, TrainResult], list[PeerScreen]]:
    """(the peers kept, by policy; the verdict on every peer, in ``peers``' order)."""
    if not peers:
        return {}, []
    if len(val) < MIN_IMAGES_TO_SCREEN:
        screens = [PeerScreen(policy, True, len(val), None, None) for policy in peers]
        return dict(peers), screens
    chosen_dice = per_image_validation_dice(chosen, val)
    screens = [
        screen_peer(policy, chosen_dice, per_image_validation_dice(peer, val))
        for policy, peer in peers.items()
    ]
    kept = {s.policy: peers[s.policy] for s in screens if s.kept}
    return kept, screens
