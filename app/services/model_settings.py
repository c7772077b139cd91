"""Segmentation model settings are checked where they are given, so a bad one fails its
request (422) instead of a round's training minutes later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.errors import InvalidInput
from app.models import Project
from samdsk.errors import ConfigError
from samdsk.model.config import AUTO_AUGMENT, FIXED_SHARE_SETTINGS, ModelConfig

# What a round trains with where neither its project nor its request says otherwise: the
# perturbation chosen on the project's own validation labels (which also turns peer maps on),
# and half of every batch human only where the machine labels' size mix departs from the human
# labels'. Under these, SamDSK's model was above the supervised one on every Kvasir-SEG and
# BUSI split and level with it on PH2 (README, Results: "SamDSK under the service's round
# setting"). The library's own defaults stay plain so that an experiment's command keeps its
# meaning.
SERVICE_MODEL_DEFAULTS: dict[str, Any] = {"machine_augment": AUTO_AUGMENT, "mix_human_share": 0.5}


def with_service_defaults(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over the service's defaults, leaving out the mix rule where ``given`` fixes
    the human share another way."""
    defaults = dict(SERVICE_MODEL_DEFAULTS)
    if any(given.get(name) for name in FIXED_SHARE_SETTINGS):
        del defaults["mix_human_share"]
    return {**defaults, **given}


def round_model_settings(project: Project, requested: Mapping[str, Any]) -> dict[str, Any]:
    """A round's model settings: the project's, overridden by the round's request, over the
    service's defaults, with the project's class count unless one is given."""
    model = with_service_defaults({**project.model_settings, **requested})
    model.setdefault("num_classes", len(project.class_names))
    return model


def check_model_settings(settings: Mapping[str, Any]) -> ModelConfig:
    """The ``ModelConfig`` of ``settings``; ``InvalidInput`` for unknown keys, wrong types and
    out-of-range values."""
    try:
        return ModelConfig.from_dict(settings)
    except (ConfigError, TypeError) as exc:
        raise InvalidInput(f"model settings: {exc}") from exc
