"""Proposal settings checked without building their source.

Building a SAM source loads its weights (seconds and gigabytes for vit_h): too much for a web
request that only has to refuse a misspelt setting or a threshold of 5 before a round runs for
an hour. The checks are the ones the sources themselves make (their field names,
``EngineSettings``' ranges, the precision names), so a setting that passes here builds later.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from samdsk.errors import ConfigError
from samdsk.proposals.registry import build_proposal_source, proposal_source_registry

# Settings of the SAM sources that ``EngineSettings`` type- and range-checks (the reference
# generator takes the same ones, with the same meaning).
_ENGINE_FIELDS = (
    "points_per_side",
    "points_per_batch",
    "crop_n_layers",
    "image_batch",
    "pred_iou_thresh",
    "stability_score_thresh",
    "box_nms_thresh",
    "crop_nms_thresh",
)


def check_proposal_settings(name: str, settings: Mapping[str, Any]) -> None:
    """ConfigError for an unknown source ``name``, an unknown setting, or a value the source
    would refuse. The offline source is cheap and simply built; SAM weights are not loaded
    (a missing checkpoint file is found when the source is built)."""
    if name not in proposal_source_registry:
        names = ", ".join(sorted(proposal_source_registry))
        raise ConfigError(f"unknown proposal source {name!r}; valid names: {names}")
    if name == "offline":
        build_proposal_source(name, **settings)
        return
    from samdsk.proposals.engine import PRECISIONS, EngineSettings
    from samdsk.proposals.sam import SamProposalSource
    from samdsk.proposals.sam_fast import FastSamProposalSource
    from samdsk.proposals.weights import sam_builder

    source_class = FastSamProposalSource if name == "sam_fast" else SamProposalSource
    valid = [field.name for field in dataclasses.fields(source_class) if field.init]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} for source {name!r}; valid: {valid}")
    if "model_type" in settings:
        sam_builder(str(settings["model_type"]))
    # only the engine picks its own prompt batch (None); the reference generator needs one
    if name == "sam" and settings.get("points_per_batch", 1) is None:
        raise ConfigError("points_per_batch must be an integer for source 'sam'; got None")
    EngineSettings(**{key: settings[key] for key in _ENGINE_FIELDS if key in settings})
    precision = settings.get("precision", "auto")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
