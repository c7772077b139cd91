"""Jobs: status and progress of background work."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SessionDep
from app.schemas import JobPublic
from app.services.jobs import get_job as fetch_job

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: int, session: SessionDep) -> JobPublic:
    return JobPublic.model_validate(fetch_job(session=session, job_id=job_id))
