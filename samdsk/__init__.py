"""SamDSK: label-efficient segmentation with SAM proposals and domain knowledge."""

# Public names are imported on first use, so ``import samdsk`` stays cheap and torch-free: the
# service can use ``samdsk.ClassKnowledge`` or ``samdsk.ModelConfig`` without loading torch,
# which only training, inference and proposals pull in.

from __future__ import annotations

from typing import TYPE_CHECKING

from samdsk._lazy import lazy_exports

if TYPE_CHECKING:
    from samdsk.errors import CheckpointError, ConfigError, SamdskError, ShapeError
    from samdsk.imageio import hash_array, read_image, read_mask
    from samdsk.knowledge import PRESETS, ClassKnowledge, get_preset
    from samdsk.matching import (
        Match,
        MultiClassMatch,
        match_classes,
        match_proposals,
        rank_matches,
        select_for_labeling,
    )
    from samdsk.metrics import dice, iou, spearman, summarize
    from samdsk.model import (
        ModelConfig,
        TrainingSample,
        TrainResult,
        load_checkpoint,
        predict_probabilities,
        save_checkpoint,
        train_model,
    )
    from samdsk.proposals import (
        ProposalCache,
        ProposalSource,
        build_proposal_source,
        default_proposal_source,
    )
    from samdsk.rounds import (
        Candidate,
        RoundConfig,
        RoundResult,
        machine_labels,
        run_round,
        run_samdsk,
    )
    from samdsk.types import Proposals

_MODULES = {
    "errors": ("CheckpointError", "ConfigError", "SamdskError", "ShapeError"),
    "imageio": ("hash_array", "read_image", "read_mask"),
    "knowledge": ("PRESETS", "ClassKnowledge", "get_preset"),
    "matching": (
        "Match",
        "MultiClassMatch",
        "match_classes",
        "match_proposals",
        "rank_matches",
        "select_for_labeling",
    ),
    "metrics": ("dice", "iou", "spearman", "summarize"),
    "model": (
        "ModelConfig",
        "TrainResult",
        "TrainingSample",
        "load_checkpoint",
        "predict_probabilities",
        "save_checkpoint",
        "train_model",
    ),
    "proposals": (
        "ProposalCache",
        "ProposalSource",
        "build_proposal_source",
        "default_proposal_source",
    ),
    "rounds": (
        "Candidate",
        "RoundConfig",
        "RoundResult",
        "machine_labels",
        "run_round",
        "run_samdsk",
    ),
    "types": ("Proposals",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "PRESETS",
    "Candidate",
    "CheckpointError",
    "ClassKnowledge",
    "ConfigError",
    "Match",
    "ModelConfig",
    "MultiClassMatch",
    "ProposalCache",
    "ProposalSource",
    "Proposals",
    "RoundConfig",
    "RoundResult",
    "SamdskError",
    "ShapeError",
    "TrainResult",
    "TrainingSample",
    "build_proposal_source",
    "default_proposal_source",
    "dice",
    "get_preset",
    "hash_array",
    "iou",
    "load_checkpoint",
    "machine_labels",
    "match_classes",
    "match_proposals",
    "predict_probabilities",
    "rank_matches",
    "read_image",
    "read_mask",
    "run_round",
    "run_samdsk",
    "save_checkpoint",
    "select_for_labeling",
    "spearman",
    "summarize",
    "train_model",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)
