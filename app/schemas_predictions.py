"""API schemas of predictions: a finished one with its summary and mask, or a pending one."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.models import JobStatus


class ClassSummary(BaseModel):
    """One class of the predicted mask (a pixel belongs to the most probable class whose
    probability exceeds 0.5)."""

    index: int = Field(description="Value of the class in the mask PNG (0 is background)")
    name: str
    foreground_fraction: float = Field(description="Share of the image's pixels in this class")
    mean_probability: float | None = Field(
        description="Mean probability of this class over its pixels; null when it has none"
    )
    max_probability: float = Field(description="Highest probability of this class anywhere")
    regions: int = Field(description="Connected regions of this class (8-connectivity)")


class PredictionSummary(BaseModel):
    """What the worker stores next to the mask."""

    model_version_id: int
    model_version: int = Field(description="Number of the model version within the project")
    width: int
    height: int
    classes: list[ClassSummary]


class PredictionPublic(PredictionSummary):
    job_id: int
    status: JobStatus
    filename: str
    mask_url: str
    mask_png_base64: str = Field(description="The mask PNG (class indices), base64-encoded")


class PredictionPending(BaseModel):
    job_id: int
    status: JobStatus
    poll_url: str = Field(description="GET it until it answers 200 (202 while pending)")
