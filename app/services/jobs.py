"""Jobs: durable records of background work, claimed by workers with a lease.

A claim is a compare-and-set ``UPDATE``: it succeeds only while the job is queued, or running
under a lease that has expired, so exactly one worker owns a job at a time and a job whose
worker died is taken over once its lease runs out. Every write by the owner is conditional on
still holding the lease, so a worker that lost its lease cannot overwrite its successor.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Job, JobStatus, utcnow

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def create_job(
    *,
    session: Session,
    kind: str,
    project_id: int | None = None,
    image_id: int | None = None,
    round_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> Job:
    job = Job(
        kind=kind,
        project_id=project_id,
        image_id=image_id,
        round_id=round_id,
        payload=payload or {},
    )
    session.add(job)
    session.flush()
    return job


def get_job(*, session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


TRACEBACK_HEAD = "Traceback (most recent call last):"
TRACEBACK_WITHHELD = "the job failed; site administrators see its traceback"


def error_summary(error: str | None) -> str | None:
    """The exception that ended a job, without the traceback above it: ``ValueError: bad
    mask``. What a caller who does not run the server may see; the frames name the server's
    files and code. A stored error that is no traceback is returned as it is."""
    if error is None or TRACEBACK_HEAD not in error:
        return error
    lines = error.rstrip().splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith(TRACEBACK_HEAD)]
    if not heads:  # an exception group: every line indented under its tree
        return TRACEBACK_WITHHELD
    # Frames are indented; the exception's own lines start at the margin (chained exceptions
    # come first, so the last traceback is the one that ended the job).
    tail = itertools.dropwhile(lambda line: not line or line[0].isspace(), lines[heads[-1] + 1 :])
    return "\n".join(tail) or TRACEBACK_WITHHELD


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)  # an UPDATE always yields a cursor result
    return int(result.rowcount)


def claim_job(*, session: Session, job_id: int, owner: str, lease_seconds: float) -> bool:
    """Take the job if it is free; returns whether this owner now holds it. Commits."""
    now = utcnow()
    claimable = or_(
        Job.status == JobStatus.QUEUED,
        (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now),
    )
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, claimable)
        .values(
            status=JobStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Job.attempts + 1,
            started_at=now,
            updated_at=now,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return _rowcount(result) == 1


def _owned(job_id: int, owner: str) -> Any:
    return (Job.id == job_id) & (Job.lease_owner == owner) & (Job.status == JobStatus.RUNNING)


def report_progress(
    *,
    session: Session,
    job_id: int,
    owner: str,
    lease_seconds: float,
    progress: float | None = None,
    message: str | None = None,
) -> bool:
    """Renew the lease and record progress; false means the lease was lost. Commits."""
    now = utcnow()
    values: dict[str, Any] = {
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "updated_at": now,
    }
    if progress is not None:
        values["progress"] = min(max(progress, 0.0), 1.0)
    if message is not None:
        values["message"] = message
    result = session.execute(
        update(Job)
        .where(_owned(job_id, owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return _rowcount(result) == 1


def finish_job(
    *,
    session: Session,
    job_id: int,
    owner: str,
    status: JobStatus,
    message: str = "",
    error: str | None = None,
) -> bool:
    """Close the job as its owner. Commits; false if the lease was lost meanwhile."""
    if status not in FINISHED:
        raise ValueError(f"{status} is not a final status")
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "message": message,
        "error": error,
        "finished_at": now,
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if status is JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    result = session.execute(
        update(Job)
        .where(_owned(job_id, owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return _rowcount(result) == 1


def jobs_to_dispatch(*, session: Session, now: datetime, resend_after: float) -> list[Job]:
    """Jobs that need a (new) task message: queued and never sent or sent long ago (a lost
    message), or running under an expired lease (a dead worker)."""
    stale = now - timedelta(seconds=resend_after)
    rows = session.scalars(
        select(Job)
        .where(
            or_(
                (Job.status == JobStatus.QUEUED)
                & or_(Job.dispatched_at.is_(None), Job.dispatched_at < stale),
                (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now),
            )
        )
        .order_by(Job.id)
        .limit(500)
    )
    return list(rows)


def mark_dispatched(*, session: Session, job_ids: list[int]) -> None:
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids))
            .values(dispatched_at=utcnow())
            .execution_options(synchronize_session=False)
        )
