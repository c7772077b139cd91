"""Numbers of an experiment: per-round rows of each arm, evaluation helpers, report files.

Dice and IoU are means over images of the per-image values at probability 0.5 (an empty
prediction of an empty mask scores 1, see ``samdsk.metrics``). Values that cannot be computed
(a correlation over fewer than two images or over constant values, the Dice of no added
labels) are ``None`` in the report and empty cells in the CSV files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samdsk.metrics import dice, iou, spearman
from samdsk.model import TrainingSample
from samdsk.model.train import TrainResult
from samdsk.rounds import predict_in_batches


@dataclass
class ArmRound:
    """One arm after one round.

    round: labels were added this many times (0 = human labels only). The "added_" fields
    describe the images added in this round: the Dice of their labels against the hidden
    truth, the Dice of the proposing model's own thresholded prediction on the same images,
    and their mean score (match score, or confidence for self-training). score_dice_spearman:
    over every image the round scored (not only the added ones). The test_, val_ and
    train_seconds fields describe the model trained after the round's additions;
    test_dice_per_image lists its Dice per test image (test order), for paired comparisons.
    human_share: the share of every batch that model's training drew from human labels (0:
    all alike; with ``mix_human_share``, what the training chose).
    """

    arm: str
    round: int
    human_labels: int
    machine_labels: int
    added: int
    added_label_dice: float | None
    added_model_dice: float | None
    added_mean_score: float | None
    score_dice_spearman: float | None
    scored: int
    test_dice: float
    test_iou: float
    val_dice: float | None
    train_seconds: float
    stopped: bool = False
    test_dice_per_image: list[float] = field(default_factory=list)
    human_share: float = 0.0


@dataclass(frozen=True)
class Added:
    """The images one round added: how many, how good their labels are (see ``ArmRound``)."""

    added: int
    label_dice: float | None
    model_dice: float | None
    mean_score: float | None
    score_dice_spearman: float | None
    scored: int


NOTHING_ADDED = Added(0, None, None, None, None, 0)


@dataclass(frozen=True)
class Evaluation:
    """Per-image test Dice and IoU of one model (same order as the test samples)."""

    dice: list[float]
    iou: list[float]

    @property
    def mean_dice(self) -> float:
        return float(np.mean(self.dice))

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.iou))


def make_row(
    arm: str,
    number: int,
    counts: tuple[int, int],
    added: Added,
    trained: TrainResult,
    evaluation: Evaluation,
) -> ArmRound:
    """The row of ``arm`` after round ``number``; counts = (human, machine) labels trained on."""
    return ArmRound(
        arm=arm,
        round=number,
        human_labels=counts[0],
        machine_labels=counts[1],
        added=added.added,
        added_label_dice=added.label_dice,
        added_model_dice=added.model_dice,
        added_mean_score=added.mean_score,
        score_dice_spearman=added.score_dice_spearman,
        scored=added.scored,
        test_dice=evaluation.mean_dice,
        test_iou=evaluation.mean_iou,
        val_dice=trained.best_val_dice,
        train_seconds=trained.seconds,
        test_dice_per_image=list(evaluation.dice),
        human_share=trained.config.human_share,
    )


def added_stats(
    scores: Sequence[float],
    labels: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    chosen: Sequence[int],
    model_masks: Sequence[np.ndarray],
) -> Added:
    """Statistics of a round that scored N images and added the ``chosen`` ones.

    scores, labels (H x W class masks), truths (H x W bool): N each, same order; chosen:
    positions in them; model_masks: the proposing model's own class masks of the chosen.
    """
    dices = label_dice(labels, truths)
    picked_truth = [truths[i] for i in chosen]
    return Added(
        added=len(chosen),
        label_dice=mean_or_none([dices[i] for i in chosen]),
        model_dice=mean_or_none(label_dice(model_masks, picked_truth)),
        mean_score=mean_or_none([scores[i] for i in chosen]),
        score_dice_spearman=spearman_or_none(scores, dices),
        scored=len(scores),
    )


def threshold_map(probability: np.ndarray) -> np.ndarray:
    """C x H x W probabilities -> H x W uint8 class mask: the most probable class where its
    probability exceeds 0.5, else 0 (background)."""
    best = np.argmax(probability, axis=0)
    top = np.take_along_axis(probability, best[None], axis=0)[0]
    return np.where(top > 0.5, best + 1, 0).astype(np.uint8)


def confidence(probability: np.ndarray) -> float:
    """Self-training confidence of a C x H x W map: the mean of max(p, 1 - p), in [0.5, 1]."""
    return float(np.maximum(probability, 1.0 - probability).mean())


def evaluate(trained: TrainResult, samples: Sequence[TrainingSample]) -> Evaluation:
    """Test Dice and IoU of ``trained`` on samples with binary masks."""
    maps = predict_in_batches(trained, [s.image for s in samples])
    masks = [threshold_map(p) > 0 for p in maps]
    truths = [s.mask.astype(np.bool_) for s in samples]
    return Evaluation(
        [dice(m, t) for m, t in zip(masks, truths, strict=True)],
        [iou(m, t) for m, t in zip(masks, truths, strict=True)],
    )


def mean_or_none(values: Sequence[float]) -> float | None:
    """The mean, or None for no values."""
    return float(np.mean(values)) if len(values) else None


def spearman_or_none(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman correlation, or None where it is undefined (n < 2, constant values)."""
    if len(x) < 2:
        return None
    value = spearman(x, y)
    return None if math.isnan(value) else value


def label_dice(labels: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> list[float]:
    """Per-image Dice of H x W class masks (nonzero = foreground) against H x W bool truths."""
    return [dice(label > 0, truth) for label, truth in zip(labels, truths, strict=True)]


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities as None, numpy scalars as Python numbers, paths as
    strings, and dataclasses as dicts, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_ready(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as indented, strictly valid JSON (no NaN)."""
    text = json.dumps(json_ready(report), indent=2, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def write_rounds_csv(path: Path, rows: Sequence[ArmRound]) -> None:
    """One CSV row per ``ArmRound`` (header = its scalar field names; None = empty cell;
    the per-image lists stay in the JSON report)."""
    names = [f.name for f in dataclasses.fields(ArmRound) if f.name != "test_dice_per_image"]
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for row in rows:
            cells = {name: getattr(row, name) for name in names}
            writer.writerow({k: "" if v is None else _cell(v) for k, v in cells.items()})


def _cell(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value
