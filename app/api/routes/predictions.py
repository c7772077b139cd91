"""Predictions for tools beside the PACS: upload an image, get the newest model's mask.

Inference needs torch, so it runs in a worker; the request waits for it up to ``wait``
seconds and otherwise answers 202 with a URL to poll.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.api.deps import ProjectViewer, RuntimeDep, SessionDep, SettingsDep, StorageDep
from app.api.params import IdPath
from app.api.uploads import read_capped
from app.models import Job, Project
from app.runtime import Runtime
from app.schemas_predictions import PredictionPending, PredictionPublic, PredictionSummary
from app.services import predictions as service
from app.services.dispatch import dispatch_jobs
from app.services.images import UploadLimits, check_upload
from app.settings import Settings
from app.storage import Storage

router = APIRouter(prefix="/projects/{project_id}", tags=["predictions"])

MAX_WAIT_SECONDS = 120
PENDING_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": PredictionPending, "description": "Not finished yet: poll `poll_url`"},
    409: {"description": "The project has no trained model version yet"},
}


def _url(job: Job) -> str:
    return f"/api/v1/projects/{job.project_id}/predictions/{job.id}"


def wants_png(request: Request) -> bool:
    """Whether the caller asked for the mask itself (``Accept: image/png``)."""
    accepted = request.headers.get("accept", "").split(",")
    return "image/png" in {part.split(";")[0].strip().lower() for part in accepted}


def _png_headers(job: Job, summary: PredictionSummary) -> dict[str, str]:
    """The summary as ``X-SamDSK-*`` headers: one comma-separated value per class, in class
    order (``nan`` for a class without pixels)."""

    def each(values: list[Any]) -> str:
        return ",".join("nan" if v is None else str(v) for v in values)

    classes = summary.classes
    return {
        "X-SamDSK-Job-Id": str(job.id),
        "X-SamDSK-Model-Version": str(summary.model_version),
        "X-SamDSK-Model-Version-Id": str(summary.model_version_id),
        "X-SamDSK-Image-Size": f"{summary.width}x{summary.height}",
        "X-SamDSK-Classes": ",".join(quote(c.name, safe="") for c in classes),
        "X-SamDSK-Foreground-Fraction": each([c.foreground_fraction for c in classes]),
        "X-SamDSK-Mean-Probability": each([c.mean_probability for c in classes]),
        "X-SamDSK-Max-Probability": each([c.max_probability for c in classes]),
        "X-SamDSK-Regions": each([c.regions for c in classes]),
    }


def prediction_response(job: Job, storage: Storage, *, as_png: bool) -> Response:
    """200 with the result (JSON, or the PNG with the summary in headers), 202 while pending,
    the job's error once it failed."""
    stored = service.finished_summary(storage=storage, job=job)
    if stored is None:
        pending = PredictionPending(job_id=job.id, status=job.status, poll_url=_url(job))
        return JSONResponse(
            status_code=status.HTTP_202_ACCEPTED,
            content=pending.model_dump(mode="json"),
            headers={"Location": pending.poll_url, "Retry-After": "1"},
        )
    summary = PredictionSummary.model_validate(stored)
    mask = storage.get(service.mask_key(job.id))
    if as_png:
        return Response(content=mask, media_type="image/png", headers=_png_headers(job, summary))
    public = PredictionPublic(
        **summary.model_dump(),
        job_id=job.id,
        status=job.status,
        filename=str(job.payload.get("filename", "")),
        mask_url=f"{_url(job)}/mask",
        mask_png_base64=base64.b64encode(mask).decode("ascii"),
    )
    return JSONResponse(content=public.model_dump(mode="json"))


def _is_pending(runtime: Runtime, job_id: int) -> bool:
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        return job is not None and job.status in service.PENDING


async def _wait_for(runtime: Runtime, job_id: int, seconds: float) -> None:
    """Poll the job row, quickly at first (a warm worker answers in well under a second)."""
    deadline = time.monotonic() + seconds
    pause = 0.05
    while await run_in_threadpool(_is_pending, runtime, job_id):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 0.5)


@router.post("/predict", response_model=PredictionPublic, responses=PENDING_RESPONSES)
async def predict(
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG, TIFF, BMP or DICOM")],
    wait: Annotated[
        int, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the result")
    ] = 30,
) -> Response:
    """The newest model version's mask of the image and a summary per class. Stores no
    image or label in the project. Send ``Accept: image/png`` for the PNG itself."""
    # Reading, decoding and the database in the thread pool, as in every other handler: on
    # the event loop a wait for SQLite's write lock would stall all requests.
    job = await run_in_threadpool(_start, file, project, session, runtime, settings)
    await _wait_for(runtime, job.id, wait)
    return await run_in_threadpool(_answer, job, session, runtime, wants_png(request))


def _start(
    file: UploadFile, project: Project, session: Session, runtime: Runtime, settings: Settings
) -> Job:
    data = read_capped(file, settings.max_upload_bytes)
    limits = UploadLimits(max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    upload = check_upload(data=data, filename=file.filename or "upload", limits=limits)
    job = service.start_prediction(
        session=session, storage=runtime.storage, project=project, upload=upload
    )
    session.commit()
    dispatch_jobs(
        session_factory=runtime.session_factory,
        queue=runtime.queue,
        jobs=[(job.id, service.JOB_KIND)],
    )
    return job


def _answer(job: Job, session: Session, runtime: Runtime, as_png: bool) -> Response:
    session.refresh(job)
    return prediction_response(job, runtime.storage, as_png=as_png)


@router.get("/predictions/{job_id}", response_model=PredictionPublic, responses=PENDING_RESPONSES)
def get_prediction(
    job_id: IdPath,
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    """The same answer as ``predict`` once the job is done; 202 while it is pending."""
    job = service.get_prediction(session=session, project=project, job_id=job_id)
    return prediction_response(job, storage, as_png=wants_png(request))


@router.get(
    "/predictions/{job_id}/mask",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 202: {"model": PredictionPending}},
)
def get_prediction_mask(
    job_id: IdPath, project: ProjectViewer, session: SessionDep, storage: StorageDep
) -> Response:
    """The mask as a PNG of class indices (0 = background), the summary in headers."""
    job = service.get_prediction(session=session, project=project, job_id=job_id)
    return prediction_response(job, storage, as_png=True)
