"""Trained model versions: what each was trained with, how it validated, and its checkpoint
to download (a project's model is as much its output as its labels)."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.api.conditional import unchanged, validators
from app.api.deps import ProjectViewer, SessionDep, StorageDep
from app.models import MAX_DB_INT, ModelVersion, Project
from app.schemas_models import ModelVersionPublic
from app.services import models as service

router = APIRouter(prefix="/projects/{project_id}/models", tags=["models"])
NumberPath = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="Model version, from 1")]


def model_public(
    project: Project, version: ModelVersion, round_number: int | None
) -> ModelVersionPublic:
    dice = version.metrics.get("val_dice")
    return ModelVersionPublic(
        number=version.number,
        round_number=round_number,
        created_at=version.created_at,
        val_dice=float(dice) if isinstance(dice, int | float) else None,
        config=service.public_config(version.config),
        metrics=service.public_metrics(version.metrics),
        checkpoint_url=f"/api/v1/projects/{project.id}/models/{version.number}/checkpoint",
    )


@router.get("", response_model=list[ModelVersionPublic])
def list_models(project: ProjectViewer, session: SessionDep) -> list[ModelVersionPublic]:
    """Every trained model version of the project, newest first."""
    return [
        model_public(project, version, number)
        for version, number in service.list_model_versions(session=session, project=project)
    ]


@router.get("/{number}", response_model=ModelVersionPublic)
def get_model(
    number: NumberPath, project: ProjectViewer, session: SessionDep
) -> ModelVersionPublic:
    version, round_number = service.get_model_version(
        session=session, project=project, number=number
    )
    return model_public(project, version, round_number)


@router.get(
    "/{number}/checkpoint",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_checkpoint(
    number: NumberPath,
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    """The version's checkpoint; a version never changes, so If-None-Match with its ETag
    gets a 304."""
    version, _ = service.get_model_version(session=session, project=project, number=number)
    tag = hashlib.sha256(version.checkpoint_key.encode()).hexdigest()[:32]  # keys stay inside
    if (cached := unchanged(request, tag)) is not None:
        return cached
    name = f"project-{project.id}-model-{version.number}.pt"
    return Response(
        content=storage.get(version.checkpoint_key),
        media_type="application/octet-stream",
        headers={
            **validators(tag),
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )
