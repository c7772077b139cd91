"""ORM models of the method's data: projects, images, append-only label versions, rounds, jobs.

Enumerations are stored as strings with CHECK constraints so one schema serves SQLite and
PostgreSQL. Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum, utcnow

if TYPE_CHECKING:
    from app.models.review import Candidate


class LabelSource(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    EDITED = "edited"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RoundStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    class_names: Mapped[list[Any]]
    # Per class name: {"min_regions", "max_regions", "min_area", "max_area"}.
    knowledge: Mapped[dict[str, Any]]
    proposal_settings: Mapped[dict[str, Any]]
    model_settings: Mapped[dict[str, Any]]
    # Candidates scoring at least this are accepted without review; None: review everything.
    auto_accept_threshold: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("project_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    original_filename: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    bit_depth: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
    statistics: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Archived: out of listings, rounds, the review queue and exports, with its labels kept;
    # a project admin restores it. Nothing is deleted.
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    archived_by: Mapped[str | None] = mapped_column(String(100), default=None)
    archive_reason: Mapped[str | None] = mapped_column(Text, default=None)

    project: Mapped[Project] = relationship()


# The images a project works with: every one that is not archived.
IMAGE_IN_USE = Image.archived_at.is_(None)


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[RoundStatus] = mapped_column(
        str_enum(RoundStatus, "round_status"), default=RoundStatus.QUEUED
    )
    settings: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    # Where the round is: the current stage, overall progress 0..1, per-stage progress and
    # wall seconds, so a resumed round knows what is done and the API can show an ETA.
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stages: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(Integer)
    model_version_id: Mapped[int | None] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    added_nothing: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When the current attempt began and the progress it began at: a round handed back by a
    # stopping worker goes on later, and its ETA must not count the time nobody worked on it.
    attempt_started_at: Mapped[datetime | None]
    attempt_progress: Mapped[float] = mapped_column(Float, default=0.0)


class Label(Base):
    """One version of an image's class mask. Rows are only ever inserted: the current label is
    the newest version not retracted, older ones stay for provenance. A version made by a
    review decision is retracted when the reviewer undoes it: kept, with who and when, but no
    longer the image's label."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("image_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    mask_key: Mapped[str] = mapped_column(String(300))
    source: Mapped[LabelSource] = mapped_column(str_enum(LabelSource, "label_source"))
    author: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    # The reviewed candidate a machine or edited label came from (labels.candidate_id and
    # candidates.label_id point at each other, so this one carries no foreign key).
    candidate_id: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))
    foreground_fraction: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retracted_at: Mapped[datetime | None]
    retracted_by: Mapped[str | None] = mapped_column(String(100))
    # Loaded with the label (one join): the API shows the round's number in its project, which
    # people use, beside the round's row id.
    round: Mapped[Round | None] = relationship(lazy="joined", viewonly=True)
    candidate: Mapped[Candidate | None] = relationship(
        primaryjoin="foreign(Label.candidate_id) == Candidate.id", lazy="joined", viewonly=True
    )

    @property
    def round_number(self) -> int | None:
        return None if self.round is None else self.round.number

    @property
    def edit_dice(self) -> float | None:
        """For an edited machine label, the Dice between the machine mask and the edit."""
        return None if self.candidate is None else self.candidate.edit_dice


class Job(Base):
    """Background work. A worker owns a job while its lease is valid (compare-and-set claim);
    an expired lease lets any worker take the job over."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(
        str_enum(JobStatus, "job_status"), default=JobStatus.QUEUED, index=True
    )
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    payload: Mapped[dict[str, Any]]
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    # Last time a task message was sent for this job; the sweeper re-sends stale ones.
    dispatched_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
