"""Predictions: the newest model version's mask of an uploaded image, made by a worker.

The API stores the upload and creates a ``predict`` job naming the model version; the worker
writes the mask and a summary under keys derived from the job id (a rerun overwrites them),
the summary last, so a stored summary means the prediction is complete.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, JobFailed, NotFound
from app.models import Job, JobStatus, ModelVersion, Project
from app.services.images import FORMAT_SUFFIXES, CheckedUpload
from app.services.jobs import create_job, error_summary
from app.storage import Storage

JOB_KIND = "predict"
PENDING = (JobStatus.QUEUED, JobStatus.RUNNING)


def mask_key(job_id: int) -> str:
    return f"predictions/{job_id}/mask.png"


def summary_key(job_id: int) -> str:
    return f"predictions/{job_id}/summary.json"


def latest_model_version(*, session: Session, project: Project) -> ModelVersion:
    """The project's newest trained model; 409 while there is none."""
    version = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.number.desc())
        .limit(1)
    )
    if version is None:
        raise Conflict(
            f"project {project.id} has no trained model yet: a round trains one "
            f"(POST /api/v1/projects/{project.id}/rounds)",
            code="no_model",
        )
    return version


def start_prediction(
    *, session: Session, storage: Storage, project: Project, upload: CheckedUpload
) -> Job:
    """Store the checked upload and create the job (not yet committed or sent)."""
    version = latest_model_version(session=session, project=project)
    key = storage.put_content(upload.data, suffix=FORMAT_SUFFIXES[upload.decoded.format])
    payload = {
        "upload_key": key,
        "filename": upload.filename[:300],
        "model_version_id": version.id,
    }
    return create_job(session=session, kind=JOB_KIND, project_id=project.id, payload=payload)


def get_prediction(*, session: Session, project: Project, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != JOB_KIND or job.project_id != project.id:
        raise NotFound(f"project {project.id} has no prediction {job_id}")
    return job


def save_result(*, storage: Storage, job_id: int, mask_png: bytes, summary: dict[str, Any]) -> None:
    """Written by the worker: the mask first, then the summary that marks it complete."""
    storage.put_at(mask_key(job_id), mask_png)
    storage.put_at(summary_key(job_id), json.dumps(summary).encode())


def finished_summary(*, storage: Storage, job: Job) -> dict[str, Any] | None:
    """The summary of a succeeded prediction, None while it is pending; a failed or
    cancelled one raises :class:`JobFailed` with its message."""
    if job.status in PENDING:
        return None
    if job.status is not JobStatus.SUCCEEDED:
        why = job.message or error_summary(job.error)
        raise JobFailed(f"prediction {job.id} {job.status.value}: {why}")
    summary: dict[str, Any] = json.loads(storage.get(summary_key(job.id)))
    return summary
