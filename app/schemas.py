"""API schemas, apart from the ORM models: ``XCreate`` in, ``XPublic`` out, ``XsPublic`` pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.models import JobStatus, LabelSource, Role

T = TypeVar("T")

# Request bodies refuse keys they do not know (a 422 naming the key): a misspelt one
# ("knowlege", "expires") would otherwise be dropped and its default used unnoticed. NaN and
# infinity are refused as what they are, not as "must be <= 1".
STRICT_INPUT = ConfigDict(extra="forbid", allow_inf_nan=False)

# Stored as given but for surrounding spaces, which no one sees in a list; a project's name is
# unique ignoring case as well (app.services.projects.name_in_use).
ProjectName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Long enough for any anatomical or lesion name; a longer one breaks the review page's layout.
ClassName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]


class Page(BaseModel, Generic[T]):
    """One page of a listing: ``count`` is the total number of rows, not the page size."""

    data: list[T]
    count: int
    offset: int
    limit: int


class ClassKnowledgeSchema(BaseModel):
    """Image-level knowledge for one class: how many regions and how large each may be."""

    # a misspelt key ("max_region") would otherwise leave its setting at the default unnoticed
    model_config = STRICT_INPUT

    min_regions: int = Field(1, ge=0, le=100)
    max_regions: int = Field(1, ge=1, le=100)
    min_area: float = Field(0.0, ge=0.0, le=1.0, description="Smallest region, fraction of image")
    max_area: float = Field(1.0, gt=0.0, le=1.0, description="Largest region, fraction of image")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_regions > self.max_regions:
            raise ValueError("min_regions must not exceed max_regions")
        if self.min_area > self.max_area:
            raise ValueError("min_area must not exceed max_area")
        return self


AutoAcceptThreshold = Annotated[
    float | None,
    Field(
        ge=0.0,
        le=1.0,
        description="Candidates scoring at least this are accepted without review (source "
        "machine, decided by auto-accept); null: every candidate is reviewed.",
    ),
]


class ProjectCreate(BaseModel):
    model_config = STRICT_INPUT

    name: ProjectName
    description: str = Field("", max_length=5000)
    class_names: list[ClassName] = Field(default_factory=lambda: ["foreground"], min_length=1)
    knowledge: dict[str, ClassKnowledgeSchema] = Field(
        default_factory=dict,
        description="Per class name; classes left out get the default (exactly one region).",
    )
    proposal_settings: dict[str, Any] = Field(default_factory=dict)
    model_settings: dict[str, Any] = Field(default_factory=dict)
    auto_accept_threshold: AutoAcceptThreshold = None

    @model_validator(mode="after")
    def _known_classes(self) -> Self:
        names = self.class_names
        # "Polyp" and "polyp" would be two classes no reviewer could tell apart
        if any(not n for n in names) or len({n.casefold() for n in names}) != len(names):
            raise ValueError("class_names must be non-empty and distinct, ignoring case")
        if len(names) > 255:
            raise ValueError("at most 255 classes are supported")
        unknown = sorted(set(self.knowledge) - set(names))
        if unknown:
            raise ValueError(f"knowledge names unknown classes: {unknown}")
        return self


class ProjectUpdate(BaseModel):
    """What an admin may change once a project exists. Only the fields sent change; a class's
    knowledge replaces that class's, the others keep theirs. Class names are fixed: labels
    store class indices."""

    model_config = STRICT_INPUT

    name: ProjectName | None = None
    description: str | None = Field(None, max_length=5000)
    knowledge: dict[str, ClassKnowledgeSchema] | None = None
    proposal_settings: dict[str, Any] | None = None
    model_settings: dict[str, Any] | None = None
    auto_accept_threshold: AutoAcceptThreshold = None
    class_names: list[ClassName] | None = Field(
        None, description="Only the project's own names (fixed once it exists)"
    )


class ProjectPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    class_names: list[str]
    knowledge: dict[str, ClassKnowledgeSchema]
    proposal_settings: dict[str, Any]
    model_settings: dict[str, Any]
    auto_accept_threshold: float | None
    created_at: datetime
    my_role: Role | None = Field(
        None,
        description="The caller's role in the project (a site administrator acts as admin "
        "everywhere), so that a client can show only what the caller may do.",
    )


class ImagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    content_hash: str
    original_filename: str
    format: str
    width: int
    height: int
    channels: int
    bit_depth: int
    size_bytes: int
    has_thumbnail: bool = False
    statistics: dict[str, Any] | None
    created_at: datetime
    label_source: LabelSource | None = Field(
        None, description="Source of the current label (listing and get only); null: none"
    )
    pending_review: bool = Field(
        False, description="A machine label of it waits for review (listing and get only)"
    )
    label_version: int | None = Field(
        None, description="Version of the current label (listing and get only); null: none"
    )
    archived_at: datetime | None = Field(
        None, description="When a project admin archived it (null: in use)"
    )
    archived_by: str | None = None
    archive_reason: str | None = None


class ImageArchive(BaseModel):
    model_config = STRICT_INPUT

    reason: str = Field(
        min_length=1, max_length=2000, description="Why it is taken out of use (audited)"
    )

    @field_validator("reason")
    @classmethod
    def _said(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("a reason must say something, not only spaces")
        return reason.strip()


class ImageUploadPublic(BaseModel):
    """Result of an upload: ``created`` is false when the same content was already there."""

    image: ImagePublic
    created: bool
    job_id: int | None


class LabelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    image_id: int
    version: int
    source: LabelSource
    author: str
    round_id: int | None
    round_number: int | None = Field(
        None, description="The number of the round the label came from, in its project"
    )
    parent_id: int | None
    candidate_id: int | None
    foreground_fraction: float
    created_at: datetime
    edit_dice: float | None = Field(
        None, description="Edited machine labels: Dice between the machine mask and the edit"
    )
    retracted_at: datetime | None = Field(
        None, description="Set when the review decision that made this version was undone"
    )
    retracted_by: str | None = None


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: JobStatus
    project_id: int | None
    image_id: int | None
    round_id: int | None
    progress: float
    message: str
    error: str | None = Field(
        None,
        description="Why the job failed: the full traceback for site administrators, who run "
        "the workers; for everyone else the exception's last line (type and message)",
    )
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ComponentHealth(BaseModel):
    ok: bool
    detail: str


class HealthPublic(BaseModel):
    status: str
    version: str
    database: ComponentHealth
    broker: ComponentHealth
    storage: ComponentHealth
    proposal_source: str
    proposal_weights: str
    segmentation_weights: str


class ImportResult(BaseModel):
    """What an import added; ``labels_unchanged`` counts masks equal to the current label."""

    images_created: int
    images_existing: int = Field(description="Images already in the project (same content)")
    labels_created: int
    labels_unchanged: int
    without_mask: int = Field(description="Images in the zip without a mask")
    job_ids: list[int] = Field(description="Statistics jobs of the new images")
