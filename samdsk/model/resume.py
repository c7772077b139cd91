"""Snapshots of a training in progress, so that a stopped or crashed training goes on from its
last snapshot instead of from step 0.

A snapshot holds what the next steps depend on: the weights, AdamW's moments, the learning
rate schedule, the global torch generator (dropout, drop-path), the history and the best
validated weights. Batches need nothing: batch ``k`` is a function of the seed and ``k``
(``TrainingBatches``). A snapshot is used only by a training of the same settings on the same
data, which its fingerprint tells; one made on other labels is ignored, not mixed in.

Serialised with ``torch.save`` as plain types and tensors, so loading uses
``torch.load(weights_only=True)`` and never unpickles code.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from samdsk.errors import CheckpointError
from samdsk.model.config import ModelConfig
from samdsk.model.data import ResizedSamples

logger = logging.getLogger(__name__)

FORMAT = "samdsk.training-snapshot/1"


@dataclass
class TrainingState:
    """A training after ``step`` of its steps (see the module's docstring)."""

    step: int
    fingerprint: str
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    torch_rng: torch.Tensor
    history: list[dict[str, float]]
    best: tuple[float, dict[str, torch.Tensor]] | None

    def to_bytes(self) -> bytes:
        payload = {
            "format": FORMAT,
            "step": self.step,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "optimizer": self.optimizer,
            "schedule": self.schedule,
            "torch_rng": self.torch_rng,
            "history": self.history,
            "best_dice": None if self.best is None else self.best[0],
            "best_state": None if self.best is None else self.best[1],
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainingState:
        """The snapshot in ``data``; CheckpointError for anything else."""
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for corrupt or foreign data
            raise CheckpointError(f"cannot read a training snapshot: {error}") from error
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CheckpointError(f"not a {FORMAT} training snapshot")
        try:
            best_dice, best_state = payload["best_dice"], payload["best_state"]
            return cls(
                step=int(payload["step"]),
                fingerprint=str(payload["fingerprint"]),
                model=payload["model"],
                optimizer=payload["optimizer"],
                schedule=payload["schedule"],
                torch_rng=payload["torch_rng"],
                history=list(payload["history"]),
                best=None if best_state is None else (float(best_dice), best_state),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"incomplete training snapshot: {error}") from error


class SnapshotStore(Protocol):
    """Where a training keeps its snapshots, by name (the training's ``machine_augment``
    policy, so that the trainings of ``"auto"`` each go on from their own)."""

    def load(self, name: str) -> TrainingState | None:
        """The snapshot saved under ``name``, None if there is none."""
        ...

    def offer(
        self, name: str, step: int, steps: int, snapshot: Callable[[], TrainingState]
    ) -> None:
        """Called after every step; saves ``snapshot()`` when the store sees fit (every few
        minutes, before a stop, at the last step). Making one copies the weights, so the
        store calls it only when it saves."""
        ...


def training_fingerprint(
    config: ModelConfig, data: ResizedSamples, val_data: ResizedSamples | None
) -> str:
    """A digest of what decides a training's steps: its settings and its resized samples
    (pixels, masks, weights, which are machine-made) and validation samples."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    for samples in (data, val_data):
        if samples is None:
            digest.update(b"-")
            continue
        for array in (samples.images, samples.masks, samples.weights, samples.machine):
            contiguous = np.ascontiguousarray(array)
            digest.update(f"{contiguous.dtype}{contiguous.shape}".encode())
            digest.update(contiguous.tobytes())
    return digest.hexdigest()


def usable_snapshot(
    store: SnapshotStore | None, name: str, fingerprint: str, steps: int
) -> TrainingState | None:
    """The snapshot to go on from, if ``store`` has one of this very training."""
    if store is None:
        return None
    try:
        state = store.load(name)
    except CheckpointError as error:
        logger.warning("training snapshot %r unreadable (%s): training from step 0", name, error)
        return None
    if state is None:
        return None
    if state.fingerprint != fingerprint or not 0 < state.step <= steps:
        logger.warning(
            "training snapshot %r is of other settings or labels: training from step 0", name
        )
        return None
    logger.info("going on from the training snapshot %r at step %d of %d", name, state.step, steps)
    return state
