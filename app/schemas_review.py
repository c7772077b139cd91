"""API schemas of rounds, candidates and their review."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import CandidateStatus, RoundStatus
from app.schemas import STRICT_INPUT


class RoundCreate(BaseModel):
    """Settings of this round on top of the project's (all optional)."""

    # a misspelt key ("treshold") would otherwise leave its setting at the default unnoticed
    model_config = STRICT_INPUT

    model: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Segmentation model settings over the project's, e.g. {'steps': 600, "
            "'input_size': 256}; where neither names them, machine_augment 'auto' and "
            "mix_human_share 0.5"
        ),
    )
    proposals: dict[str, Any] = Field(
        default_factory=dict, description="Proposal settings, e.g. {'source': 'offline'}"
    )
    threshold: float = Field(
        0.9, ge=0.0, le=1.0, description="Match score from which a candidate counts as added"
    )
    peer_maps: bool | None = Field(
        None,
        description=(
            "Match against the mean of the probability maps of every model that model setting "
            "machine_augment 'auto' trains (one per perturbation policy), not the chosen "
            "model's alone: a region one model is sure of and the other rejects no longer "
            "matches near 1. Default (null): on under machine_augment 'auto' (the service's "
            "default where the project and round name no policy), off otherwise; "
            "true under another policy is refused. Needs validation labels (5 or more human "
            "labels) to have a second model; costs one more prediction per image."
        ),
    )


class RoundPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    number: int
    status: RoundStatus
    stage: str
    progress: float
    eta_seconds: float | None = None
    stages: dict[str, Any]
    counts: dict[str, Any]
    metrics: dict[str, Any]
    settings: dict[str, Any]
    error: str | None
    job_id: int | None
    model_version_id: int | None
    cancel_requested: bool
    added_nothing: bool
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempt_started_at: datetime | None = Field(
        None, description="When the current attempt began (a round resumes after a stop)"
    )


class CandidatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    image_id: int
    round_id: int
    round_number: int = 0
    model_version_id: int
    score: float
    rank: int | None
    status: CandidateStatus
    chosen: dict[str, Any]
    foreground_fraction: float
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    edit_dice: float | None
    label_id: int | None
    image_url: str = ""
    mask_url: str = ""
    overlay_url: str = ""


class ReviewQueuePublic(BaseModel):
    data: list[CandidatePublic]
    count: int = Field(description="Pending candidates under these filters")
    next_cursor: str | None


class RejectRequest(BaseModel):
    model_config = STRICT_INPUT

    reason: str = Field(min_length=1, max_length=2000)


class AcceptAboveRequest(BaseModel):
    model_config = STRICT_INPUT

    threshold: float = Field(ge=0.0, le=1.0)
    include_empty: bool = Field(
        default=False,
        description="also accept empty annotations ('nothing here'); by default they wait for "
        "a reviewer, since a model that misses a lesion is as sure of absence as on a normal "
        "image",
    )


class AcceptAboveResult(BaseModel):
    accepted: int


class ProjectStatus(BaseModel):
    labeled: int
    images: int
    pending_candidates: int
    converged: bool
    active_round: int | None
    labeled_over_rounds: list[dict[str, Any]]
