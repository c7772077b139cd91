"""Jobs: status and progress of background work."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CurrentUser, SessionDep
from app.api.params import IdPath
from app.errors import NotFound
from app.schemas import JobPublic
from app.services.jobs import error_summary
from app.services.jobs import get_job as fetch_job
from app.services.members import role_in

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: IdPath, session: SessionDep, user: CurrentUser) -> JobPublic:
    """A job of a project the caller belongs to (any job for a site administrator).

    A failed job's ``error`` is its full traceback for site administrators, who run the
    workers and debug them; for everyone else it is the exception's last line (type and
    message), since the frames name the server's files and code."""
    job = fetch_job(session=session, job_id=job_id)
    if not user.is_superuser and (
        job.project_id is None
        or role_in(session=session, user=user, project_id=job.project_id) is None
    ):
        raise NotFound(f"job {job_id} does not exist")
    public = JobPublic.model_validate(job)
    if not user.is_superuser:
        public.error = error_summary(job.error)
    return public
