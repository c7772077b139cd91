"""Segmentation model settings are checked where they are given, so a bad one fails its
request (422) instead of a round's training minutes later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.errors import InvalidInput
from app.models import Project
from samdsk.errors import ConfigError
from samdsk.model.config import ModelConfig


def round_model_settings(project: Project, requested: Mapping[str, Any]) -> dict[str, Any]:
    """A round's model settings: the project's, overridden by the round's request, with the
    project's class count unless one is given."""
    model = {**project.model_settings, **requested}
    model.setdefault("num_classes", len(project.class_names))
    return model


def check_model_settings(settings: Mapping[str, Any]) -> ModelConfig:
    """The ``ModelConfig`` of ``settings``; ``InvalidInput`` for unknown keys, wrong types and
    out-of-range values."""
    try:
        return ModelConfig.from_dict(settings)
    except (ConfigError, TypeError) as exc:
        raise InvalidInput(f"model settings: {exc}") from exc
