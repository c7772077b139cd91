"""Archiving an image (project admins): out of listings, rounds, the review queue and exports,
with every label version kept, until it is restored. For an upload that does not belong (the
wrong patient, a duplicate under another name, an unreadable scan), since nothing is deleted."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CurrentUser, ProjectAdmin, SessionDep
from app.api.params import IdPath
from app.api.routes.images import image_public
from app.schemas import ImageArchive, ImagePublic
from app.services import images as service
from app.services.audit import record

router = APIRouter(prefix="/projects/{project_id}/images", tags=["images"])


@router.post("/{image_id}/archive", response_model=ImagePublic)
def archive_image(
    image_id: IdPath,
    body: ImageArchive,
    project: ProjectAdmin,
    user: CurrentUser,
    session: SessionDep,
) -> ImagePublic:
    """Take the image out of use; its pending candidates leave the review queue. 409 if it
    is archived already."""
    image = service.get_image(session=session, project=project, image_id=image_id)
    service.archive_image(session=session, image=image, user=user, reason=body.reason)
    record(
        session=session,
        actor=user,
        action="image.archive",
        target_type="image",
        target_id=image.id,
        project_id=project.id,
        details={"filename": image.original_filename, "reason": body.reason},
    )
    session.commit()
    states = service.label_states(session=session, image_ids=[image.id])
    return image_public(image, states[image.id])


@router.post("/{image_id}/restore", response_model=ImagePublic)
def restore_image(
    image_id: IdPath, project: ProjectAdmin, user: CurrentUser, session: SessionDep
) -> ImagePublic:
    """Put an archived image back in use, its labels as they were; 409 if it is not archived."""
    image = service.get_image(session=session, project=project, image_id=image_id)
    reason = image.archive_reason
    service.restore_image(session=session, image=image)
    record(
        session=session,
        actor=user,
        action="image.restore",
        target_type="image",
        target_id=image.id,
        project_id=project.id,
        details={"filename": image.original_filename, "archive_reason": reason},
    )
    session.commit()
    states = service.label_states(session=session, image_ids=[image.id])
    return image_public(image, states[image.id])
