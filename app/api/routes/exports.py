"""Export of the current labels: COCO JSON or a zip of PNG masks with a manifest."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import closing
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from app.api.deps import ProjectViewer, SessionDep, SettingsDep, StorageDep
from app.errors import InvalidInput
from app.models import LabelSource, Project
from app.services import exports as service
from app.settings import Settings

router = APIRouter(prefix="/projects/{project_id}", tags=["export"])


@router.get(
    "/export",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/json": {}, "application/zip": {}}},
        409: {"description": "deidentify: an image's DICOM header declares burned-in text"},
    },
)
def export_labels(
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    format: Annotated[service.ExportFormat, Query(description="coco or masks")],
    source: Annotated[
        LabelSource | None, Query(description="Only images whose current label has this source")
    ] = None,
    include_images: Annotated[
        bool,
        Query(
            description="masks only: the images too, as images/<name>.<ext> beside "
            "masks/<name>.png, the layout an import reads"
        ),
    ] = False,
    deidentify: Annotated[
        bool,
        Query(
            description="name every image image-<id> instead of its file name, and write "
            "images (include_images) without identifying metadata: DICOM patient, study, "
            "dates and private tags, new UIDs; PNG text, JPEG EXIF and comments, TIFF tags. "
            "An image whose DICOM header declares burned-in text is a 409"
        ),
    ] = False,
) -> FileResponse:
    """The newest label version of every labelled image, as COCO JSON (RLE segmentations) or
    as a zip of PNG masks named by the images' file names, with ``manifest.csv``."""
    if include_images and format is service.ExportFormat.COCO:  # not silently left out
        raise InvalidInput("include_images applies to the masks export only, not to coco")
    deidentified = _deidentification(settings, project) if deidentify else None
    suffix = ".json" if format is service.ExportFormat.COCO else ".zip"
    handle, path = tempfile.mkstemp(prefix="samdsk-export-", suffix=suffix)
    try:
        if format is service.ExportFormat.COCO:
            with open(handle, "w", encoding="utf-8") as out:
                service.write_coco(
                    rows=lambda: service.current_label_rows(
                        session=session, project=project, source=source
                    ),
                    project=project,
                    storage=storage,
                    out=out,
                    deidentified=deidentified,
                )
        else:
            with (
                open(handle, "wb") as binary,
                closing(
                    service.current_label_rows(session=session, project=project, source=source)
                ) as rows,
            ):
                service.write_masks_zip(
                    rows=rows,
                    storage=storage,
                    out=binary,
                    include_images=include_images,
                    deidentified=deidentified,
                )
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/json" if suffix == ".json" else "application/zip",
        filename=f"project-{project.id}-labels-{format.value}{suffix}",
        background=BackgroundTask(os.unlink, path),
    )


def _deidentification(settings: Settings, project: Project) -> service.Deidentification:
    # New DICOM UIDs are keyed per project by the server's secret: exports of one project
    # agree with each other, and nobody without the secret can map them back.
    key = hashlib.sha256(f"{settings.secret_key}:deidentify:{project.id}".encode()).digest()
    return service.Deidentification(uid_key=key, max_pixels=settings.max_image_pixels)
