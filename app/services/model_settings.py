"""Segmentation model settings are checked where they are given, so a bad one fails its
request (422) instead of a round's training minutes later, and completed with what only the
server may decide.

Which weight files a worker starts from is the server's configuration
(``SAMDSK_ENCODER_WEIGHTS``): a client that could name a file path would make the workers read
any file it likes, or start from another project's model.
"""

from __future__ import annotations

import dataclasses
import re
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
SERVER_ONLY_SETTINGS = ("encoder_weights_path", "init_weights_path")

# The most a request may ask of a worker. ModelConfig refuses what has no meaning (a negative
# count, a side the encoders cannot halve five times); these refuse what is well formed but
# would exhaust a worker's memory or never finish. Each is far above what the README, the
# benchmarks and docs/results use (input_size 256, batch_size 8, steps 3000, cpu_threads 2).
MODEL_SETTING_LIMITS: dict[str, int | float] = {
    # SAM's own input side; activations grow with its square
    "input_size": 1024,
    # the labelled sets this service is for hold tens to hundreds of images
    "batch_size": 128,
    # days on a CPU: 1000 steps at 256 px took 50 minutes there (docs/results/ph2_budget)
    "steps": 100_000,
    # data-loader processes and torch threads beyond a large server's cores only contend
    "num_workers": 64,
    "cpu_threads": 256,
    # AdamW's defaults here are 1e-3 and 1e-4; above 1 it diverges, or decays the weights away
    "lr": 1.0,
    "weight_decay": 1.0,
    # a machine label weighing more than ten human ones has no use; a huge weight overflows
    "machine_label_weight": 10.0,
    # the range NumPy's generator takes, which training seeds with it
    "seed": 2**32 - 1,
}
# The names ModelConfig documents (no machine has a hundred GPUs). Whether the worker has that
# device is the worker's to judge: in production the API runs on other machines than the
# workers (README, Production), so the API host having no GPU says nothing about a worker's.
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:[0-9]{1,2})?")


def with_service_defaults(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over the service's defaults, leaving out the mix rule where ``given`` fixes
    the human share another way."""
    defaults = dict(SERVICE_MODEL_DEFAULTS)
    if any(given.get(name) for name in FIXED_SHARE_SETTINGS):
        del defaults["mix_human_share"]
    return {**defaults, **given}


def merge_model_settings(
    stored: Mapping[str, Any], requested: Mapping[str, Any], *, class_count: int
) -> dict[str, Any]:
    """``requested`` over a project's ``stored`` settings, over the service's defaults, with
    the project's class count unless one is given, and without the settings only the server
    may choose (a project stored before they were refused may hold them)."""
    model = with_service_defaults({**stored, **requested})
    model.setdefault("num_classes", class_count)
    return {key: value for key, value in model.items() if key not in SERVER_ONLY_SETTINGS}


def round_model_settings(project: Project, requested: Mapping[str, Any]) -> dict[str, Any]:
    """A round's model settings: the project's, overridden by the round's request
    (``merge_model_settings``)."""
    return merge_model_settings(
        project.model_settings, requested, class_count=len(project.class_names)
    )


def check_model_settings(settings: Mapping[str, Any]) -> ModelConfig:
    """The ``ModelConfig`` of ``settings``; ``InvalidInput`` for unknown keys, wrong types and
    out-of-range values."""
    try:
        return ModelConfig.from_dict(settings)
    except (ConfigError, TypeError) as exc:
        raise InvalidInput(f"model settings: {exc}") from exc


def check_client_model_settings(
    given: Mapping[str, Any], *, class_count: int, stored: Mapping[str, Any] | None = None
) -> ModelConfig:
    """The ``ModelConfig`` a round would train with, from ``given`` (what a client sends now)
    over a project's ``stored`` settings; ``InvalidInput`` for a setting only the server may
    choose, a class count other than the project's, a value beyond ``MODEL_SETTING_LIMITS``,
    a malformed device, or an architecture or encoder the worker could not build."""
    settable = sorted(
        {field.name for field in dataclasses.fields(ModelConfig)} - set(SERVER_ONLY_SETTINGS)
    )
    unknown = sorted(set(given) - set(settable) - set(SERVER_ONLY_SETTINGS))
    if unknown:  # named with what a request may set, not every field the library has
        raise InvalidInput(
            f"unknown model setting {unknown[0]!r}; a request may set: {', '.join(settable)}"
        )
    server_only = sorted(set(given) & set(SERVER_ONLY_SETTINGS))
    if server_only:
        raise InvalidInput(
            f"model settings {server_only} are the server's to set (SAMDSK_ENCODER_WEIGHTS), "
            "not a request's"
        )
    config = check_model_settings(
        merge_model_settings(stored or {}, given, class_count=class_count)
    )
    if config.num_classes != class_count:
        # the model's outputs are the project's classes, one channel each
        raise InvalidInput(
            f"model setting num_classes must be the project's class count, {class_count}; "
            f"got {config.num_classes}"
        )
    check_model_limits(config)
    if not DEVICE_NAME.fullmatch(config.device):
        raise InvalidInput(
            f"model setting device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {config.device!r}"
        )
    check_network_names(config)
    return config


def check_model_limits(config: ModelConfig) -> None:
    """InvalidInput for a setting of ``config`` above its ``MODEL_SETTING_LIMITS``."""
    for name, limit in MODEL_SETTING_LIMITS.items():
        value = getattr(config, name)
        if value is not None and value > limit:
            raise InvalidInput(f"model setting {name} must be at most {limit}; got {value}")


def check_network_names(config: ModelConfig) -> None:
    """InvalidInput unless the worker's model factory can build ``config``'s architecture with
    its encoder (``samdsk.model.factory.check_architecture``: the names, then smp's and timm's
    own rules for the pair, such as DPT's timm-only encoders).

    Nothing is built for real: building a large encoder takes seconds and gigabytes, too much
    for a web request; the check builds on PyTorch's meta device instead (well under a second).
    It imports torch, so the library's defaults, which most projects keep, are taken as they
    are.
    """
    default = ModelConfig()
    if (config.arch, config.encoder) == (default.arch, default.encoder):
        return
    # imports torch: only for a request that names another network
    from samdsk.model.factory import check_architecture

    try:
        check_architecture(config)
    except ConfigError as exc:
        raise InvalidInput(f"model settings: {exc}") from exc
