"""The proposal source interface and a registry of named builders.

Like ``segment_anything.sam_model_registry``: a name maps to one builder function, and an
unknown name is an error that lists the valid ones. The SAM builders import torch only when
called, so the offline source stays light. "sam" runs segment_anything's own automatic mask
generator; "sam_fast" runs ``samdsk.proposals.engine`` (same settings and masks, batched for
GPUs, with an optional embedding cache).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from samdsk.errors import ConfigError
from samdsk.types import Proposals

logger = logging.getLogger(__name__)

# Settings callers may pass to any source (the command line passes them all); the offline
# source has no use for them and accepts them only while they select no SAM weights.
SAM_ONLY_SETTINGS = ("checkpoint", "model_type", "device")


@runtime_checkable
class ProposalSource(Protocol):
    """Something that turns an image into region proposals."""

    @property
    def name(self) -> str:
        """Registry name of the source: ``"offline"``, ``"sam"`` (the reference generator) or
        ``"sam_fast"`` (the batched engine, same masks)."""
        ...

    def settings_key(self) -> str:
        """Stable string of every setting that changes the output (weights identity included),
        used in cache keys."""
        ...

    def describe(self) -> str:
        """One human-readable line: which source and which weights."""
        ...

    def propose(self, image: np.ndarray) -> Proposals:
        """Proposals for an H x W x 3 uint8 RGB image (masks N x H x W bool)."""
        ...


def _build_offline(**settings: Any) -> ProposalSource:
    from samdsk.proposals.offline import OfflineProposalSource

    if settings.get("checkpoint"):
        raise ConfigError(
            "a SAM checkpoint was given but the 'offline' source uses none; build 'sam' instead"
        )
    for key in SAM_ONLY_SETTINGS:
        settings.pop(key, None)
    return OfflineProposalSource(**_known(OfflineProposalSource, settings))


def _build_sam(**settings: Any) -> ProposalSource:
    from samdsk.proposals.sam import SamProposalSource

    if not settings.get("checkpoint"):  # None or "" (an unset setting)
        raise ConfigError("the 'sam' source needs checkpoint=<path to a local SAM weight file>")
    return SamProposalSource(**_known(SamProposalSource, settings))


def _build_sam_fast(**settings: Any) -> ProposalSource:
    from samdsk.proposals.sam_fast import FastSamProposalSource

    if not settings.get("checkpoint"):
        raise ConfigError(
            "the 'sam_fast' source needs checkpoint=<path to a local SAM weight file>"
        )
    return FastSamProposalSource(**_known(FastSamProposalSource, settings))


proposal_source_registry: dict[str, Callable[..., ProposalSource]] = {
    "offline": _build_offline,
    "sam": _build_sam,
    "sam_fast": _build_sam_fast,
}


def build_proposal_source(name: str, **settings: Any) -> ProposalSource:
    """Build the proposal source registered as ``name`` with keyword ``settings``.

    Raises ConfigError for an unknown name or setting (the message lists the valid ones) and
    CheckpointError when SAM weights are missing or unreadable.
    """
    builder = proposal_source_registry.get(name)
    if builder is None:
        valid = ", ".join(sorted(proposal_source_registry))
        raise ConfigError(f"unknown proposal source {name!r}; valid names: {valid}")
    return builder(**settings)


def default_proposal_source(
    sam_checkpoint: str | Path | None, sam_model: str = "vit_b", device: str = "cpu"
) -> ProposalSource:
    """SAM when a checkpoint is given, else (None or "") the offline source with a loud
    warning."""
    if sam_checkpoint:
        return build_proposal_source(
            "sam", checkpoint=sam_checkpoint, model_type=sam_model, device=device
        )
    logger.warning(
        "NO SAM CHECKPOINT CONFIGURED: using offline classical region proposals instead of "
        "Segment Anything; set a local SAM checkpoint for the method as published"
    )
    return build_proposal_source("offline")


def _known(cls: type, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings, or ConfigError naming the unknown ones and the valid ones."""
    valid = [field.name for field in dataclasses.fields(cls) if field.init]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {unknown} for {cls.__name__}; valid: {', '.join(valid)}"
        )
    return settings
