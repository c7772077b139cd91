"""ORM models of the review loop: trained model versions and ranked machine-label candidates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, str_enum, utcnow


class CandidateStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EDITED = "edited"
    SUPERSEDED = "superseded"  # a later round made a new candidate for the same image


class ModelVersion(Base):
    """A trained segmentation model: its checkpoint in storage and how it was made."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    number: Mapped[int] = mapped_column(Integer)
    checkpoint_key: Mapped[str] = mapped_column(String(300))
    config: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Candidate(Base):
    """A constructed annotation of one image in one round, waiting for (or past) review.
    At most one per round and image: a resumed round cannot duplicate it."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("round_id", "image_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    mask_key: Mapped[str] = mapped_column(String(300))
    mask_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float, index=True)
    rank: Mapped[int | None] = mapped_column(Integer)
    chosen: Mapped[dict[str, Any]]
    foreground_fraction: Mapped[float] = mapped_column(Float)
    status: Mapped[CandidateStatus] = mapped_column(
        str_enum(CandidateStatus, "candidate_status"), default=CandidateStatus.PENDING, index=True
    )
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    edit_dice: Mapped[float | None] = mapped_column(Float)
    label_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
