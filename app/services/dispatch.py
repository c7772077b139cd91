"""Sending job tasks: right after a job is committed, and again by each worker's sweeper for
jobs whose message was lost or whose worker died."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import utcnow
from app.queue import TaskQueue
from app.services.jobs import jobs_to_dispatch, mark_dispatched

log = logging.getLogger(__name__)


def dispatch_jobs(
    *, session_factory: sessionmaker[Session], queue: TaskQueue, jobs: list[tuple[int, str]]
) -> int:
    """Send one task per (job id, kind); a broker failure is logged, not raised: the job stays
    queued and a worker's sweeper sends it later. Returns how many were sent."""
    sent: list[int] = []
    for job_id, kind in jobs:
        try:
            queue.send_job(kind=kind, job_id=job_id)
        except Exception as exc:  # any broker error: the job stays queued for the sweeper
            log.warning("could not send job %s (%s) to the broker: %s", job_id, kind, exc)
            continue
        sent.append(job_id)
    with session_scope(session_factory) as session:
        mark_dispatched(session=session, job_ids=sent)
    return len(sent)


def sweep_jobs(
    *, session_factory: sessionmaker[Session], queue: TaskQueue, resend_after: float
) -> int:
    """Re-send tasks for queued jobs with a stale message and running jobs with an expired
    lease. Duplicate messages are harmless: the claim lets only one worker run a job."""
    with session_scope(session_factory) as session:
        pending = [
            (job.id, job.kind)
            for job in jobs_to_dispatch(session=session, now=utcnow(), resend_after=resend_after)
        ]
    if not pending:
        return 0
    return dispatch_jobs(session_factory=session_factory, queue=queue, jobs=pending)
