"""Labels: upload a human mask, list an image's versions, get the current one and its mask."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile, status

from app.api.conditional import unchanged, validators
from app.api.deps import (
    CurrentUser,
    ProjectAnnotator,
    ProjectViewer,
    SessionDep,
    SettingsDep,
    StorageDep,
)
from app.api.params import IdPath
from app.api.uploads import read_capped
from app.errors import NotFound
from app.models import MAX_DB_INT, LabelSource
from app.schemas import LabelPublic
from app.services import labels as service
from app.services.audit import record
from app.services.images import get_image

router = APIRouter(prefix="/projects/{project_id}/images/{image_id}/labels", tags=["labels"])

VersionPath = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="Label version, from 1")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LabelPublic,
    responses={
        status.HTTP_200_OK: {
            "model": LabelPublic,
            "description": "The mask already is the current human label: no version added",
        }
    },
)
def upload_label(
    image_id: IdPath,
    response: Response,
    project: ProjectAnnotator,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    file: Annotated[
        UploadFile,
        File(description="Single-channel mask, same size as the image: {0,255} or 0..C"),
    ],
    expected_version: Annotated[
        int | None,
        Form(
            ge=0,
            le=MAX_DB_INT,
            description="The label version you edited (0: none); 409 if it moved on",
        ),
    ] = None,
) -> LabelPublic:
    """Add a human label as a new version; earlier versions are kept.

    Sending the current human label's mask again (a repeat, or a retry whose 201 was lost)
    adds nothing and answers 200 with that label."""
    image = get_image(session=session, project=project, image_id=image_id)
    data = read_capped(file, settings.max_upload_bytes)
    mask = service.check_mask(
        data=data, image=image, project=project, max_bytes=settings.max_upload_bytes
    )
    service.lock_labels(session=session, image=image)  # the repeat check and the insert as one
    repeated = service.repeated_label(
        session=session, image=image, mask=mask, author=user, expected_version=expected_version
    )
    if repeated is not None:
        response.status_code = status.HTTP_200_OK
        return LabelPublic.model_validate(repeated)
    label = service.add_label(
        session=session,
        storage=storage,
        image=image,
        mask=mask,
        source=LabelSource.HUMAN,
        author=user,
        expected_version=expected_version,
    )
    record(
        session=session,
        actor=user,
        action="label.create",
        target_type="image",
        target_id=image.id,
        project_id=project.id,
        details={"version": label.version, "source": label.source.value},
    )
    return LabelPublic.model_validate(label)


@router.get("", response_model=list[LabelPublic])
def list_labels(image_id: IdPath, project: ProjectViewer, session: SessionDep) -> list[LabelPublic]:
    image = get_image(session=session, project=project, image_id=image_id)
    return [
        LabelPublic.model_validate(v) for v in service.list_labels(session=session, image=image)
    ]


@router.get("/current", response_model=LabelPublic)
def get_current_label(image_id: IdPath, project: ProjectViewer, session: SessionDep) -> LabelPublic:
    image = get_image(session=session, project=project, image_id=image_id)
    label = service.current_label(session=session, image=image)
    if label is None:  # its own code: the image exists, unlike a 404 "not_found"
        raise NotFound(f"image {image_id} has no label yet", code="no_label")
    return LabelPublic.model_validate(label)


@router.get("/{version}/mask", response_class=Response)
def get_label_mask(
    image_id: IdPath,
    version: VersionPath,
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    """The mask of one version as a PNG of class indices (0 = background); a version never
    changes, so If-None-Match with its ETag gets a 304."""
    image = get_image(session=session, project=project, image_id=image_id)
    label = service.get_label_version(session=session, image=image, version=version)
    if (cached := unchanged(request, label.mask_key)) is not None:
        return cached
    content = storage.get(label.mask_key)
    return Response(content=content, media_type="image/png", headers=validators(label.mask_key))
