"""Trained model versions as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ModelVersionPublic(BaseModel):
    number: int = Field(description="1, 2, ... in the order the project's rounds trained them")
    round_number: int | None = Field(description="The round that trained it")
    created_at: datetime
    val_dice: float | None = Field(
        description="Best Dice on the held-out human labels (None without any)"
    )
    config: dict[str, Any] = Field(description="The ModelConfig it was trained with")
    metrics: dict[str, Any] = Field(
        description="Training numbers: val_dice, train_images, val_images, seconds, device, "
        "augment, and the perturbation choice where it was made"
    )
    checkpoint_url: str = Field(
        description="Its weights and config, a torch.save file that "
        "samdsk.model.checkpoint.load_checkpoint and 'samdsk match --model' read"
    )
