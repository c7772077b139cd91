"""Segmentation model settings are checked where they are given, so a bad one fails its
request (422) instead of a round's training minutes later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.errors import InvalidInput
from samdsk.errors import ConfigError
from samdsk.model.config import ModelConfig


def check_model_settings(settings: Mapping[str, Any], num_classes: int) -> None:
    """Raise ``InvalidInput`` unless ``settings`` (with the project's class count) make a
    valid ``ModelConfig``; unknown keys, wrong types and out-of-range values all fail."""
    merged = {"num_classes": num_classes, **settings}
    try:
        ModelConfig.from_dict(merged)
    except (ConfigError, TypeError) as exc:
        raise InvalidInput(f"model settings: {exc}") from exc
