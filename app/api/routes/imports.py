"""Import of a labelled data set, all or nothing: a zip of ``images/`` and ``masks/``, or of
a COCO JSON file and its images."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from app.api.deps import CurrentUser, ProjectAnnotator, RuntimeDep, SessionDep, SettingsDep
from app.schemas import ImportResult
from app.services import imports as service
from app.services.archive import ArchiveLimits, open_archive
from app.services.audit import record
from app.services.dispatch import dispatch_jobs
from app.services.images import UploadLimits

router = APIRouter(prefix="/projects/{project_id}", tags=["import"])


@router.post("/import", response_model=ImportResult)
def import_archive(
    project: ProjectAnnotator,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    file: Annotated[
        UploadFile,
        File(
            description="A zip of images/<name>.<ext> and masks/<name>.png, or of one COCO "
            "JSON file and the images it lists"
        ),
    ],
) -> ImportResult:
    """Add the zip's images, and a human label version for each mask. Everything is checked
    first: any bad entry is a 4xx naming it, and nothing is stored. Images already in the
    project (same content) get a new label version instead of a second copy."""
    limits = UploadLimits(max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    archive_limits = ArchiveLimits(
        max_zip_bytes=settings.max_import_bytes,
        max_entries=settings.max_import_files,
        max_entry_bytes=settings.max_upload_bytes,
    )
    with open_archive(file.file, archive_limits) as archive:
        pairs = service.plan_import(
            archive=archive, project=project, max_bytes=settings.max_upload_bytes
        )
        service.check_pairs(archive=archive, pairs=pairs, project=project, limits=limits)
        counts = service.store_pairs(
            session=session,
            storage=runtime.storage,
            project=project,
            user=user,
            archive=archive,
            pairs=pairs,
            limits=limits,
        )
    details = {k: v for k, v in dataclasses.asdict(counts).items() if k != "job_ids"}
    record(
        session=session,
        actor=user,
        action="project.import",
        target_type="project",
        target_id=project.id,
        project_id=project.id,
        details={**details, "filename": file.filename or ""},
    )
    session.commit()
    dispatch_jobs(
        session_factory=runtime.session_factory,
        queue=runtime.queue,
        jobs=[(job_id, "image_statistics") for job_id in counts.job_ids],
    )
    return ImportResult(**dataclasses.asdict(counts))
