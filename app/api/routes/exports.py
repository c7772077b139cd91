"""Export of the current labels: COCO JSON or a zip of PNG masks with a manifest."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from app.api.deps import ProjectViewer, SessionDep, StorageDep
from app.errors import InvalidInput
from app.models import LabelSource
from app.services import exports as service

router = APIRouter(prefix="/projects/{project_id}", tags=["export"])


@router.get(
    "/export",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}, "application/zip": {}}}},
)
def export_labels(
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
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
) -> FileResponse:
    """The newest label version of every labelled image, as COCO JSON (RLE segmentations) or
    as a zip of PNG masks named by the images' file names, with ``manifest.csv``."""
    if include_images and format is service.ExportFormat.COCO:  # not silently left out
        raise InvalidInput("include_images applies to the masks export only, not to coco")
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
                )
        else:
            with open(handle, "wb") as binary:
                service.write_masks_zip(
                    rows=service.current_label_rows(
                        session=session, project=project, source=source
                    ),
                    storage=storage,
                    out=binary,
                    include_images=include_images,
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
