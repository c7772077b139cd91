"""Running one job under a lease: claim, heartbeat while working, finish as the owner.

A handler gets a :class:`JobContext` to report progress. If another worker took the job over
(this one stalled past its lease), progress reports raise :class:`LeaseLost` and the handler's
work is abandoned without touching the job row. If this process was asked to stop
(:func:`request_stop`, on a worker's shutdown), they raise :class:`WorkerStopping` and the job
is handed back unfinished, for the next worker to take over at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from app.db import session_scope
from app.models import Job, JobStatus, utcnow
from app.runtime import Runtime
from app.services.jobs import claim_job, finish_job, get_job, report_progress
from samdsk.interrupt import interruptible

log = logging.getLogger(__name__)
HANDED_BACK = "handed back by a stopping worker; the next worker takes it over"


class LeaseLost(RuntimeError):
    """Another worker owns the job now."""


class JobCancelled(RuntimeError):
    """Someone asked the job to stop; it ends as cancelled, not failed."""


class WorkerStopping(BaseException):
    """This worker process is shutting down; the job goes back unfinished. A BaseException,
    like KeyboardInterrupt: a handler's ``except Exception`` that records a failure must let
    it pass, as the work did not fail."""


# Set once per process, from a signal handler or another thread; it is never cleared, since
# a process asked to stop takes no new work.
_stopping = threading.Event()


def request_stop() -> None:
    """Make every job of this process hand itself back at its next progress report."""
    if not _stopping.is_set():  # a repeated signal must not re-enter set(), which takes a lock
        _stopping.set()


def stop_requested() -> bool:
    """Whether this process was asked to stop (work about to hand itself back may first save
    what it would otherwise lose)."""
    return _stopping.is_set()


def raise_if_stopping() -> None:
    """Raise :class:`WorkerStopping` once this process is asked to stop; cheap enough for
    every step of a loop."""
    if _stopping.is_set():
        raise WorkerStopping("the worker is stopping")


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class JobContext:
    runtime: Runtime
    job_id: int
    owner: str
    _lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Record progress (0..1) and renew the lease."""
        raise_if_stopping()
        if self._lost.is_set() or not self._renew(fraction, message):
            self._lost.set()
            raise LeaseLost(f"job {self.job_id} was taken over by another worker")

    def _renew(self, fraction: float | None = None, message: str | None = None) -> bool:
        with session_scope(self.runtime.session_factory) as session:
            return report_progress(
                session=session,
                job_id=self.job_id,
                owner=self.owner,
                lease_seconds=self.runtime.settings.job_lease_seconds,
                progress=fraction,
                message=message,
            )


def hand_back_job(*, session: Session, job_id: int, owner: str) -> bool:
    """Give up a job unfinished: it stays running, under a lease that has already expired,
    which is what the claim and the sweep take for a job whose worker died, so any worker
    claims it now and the next sweep sends it a task. Commits; false if it was not ours."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
        .values(
            lease_owner=None,
            # in the past, not now: a claim in the same clock tick must see it expired
            lease_expires_at=now - timedelta(seconds=1),
            updated_at=now,
            message=HANDED_BACK,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    assert isinstance(result, CursorResult)  # an UPDATE always yields a cursor result
    return result.rowcount == 1


def _heartbeat(context: JobContext, stop: threading.Event) -> None:
    """Renew the lease at a third of its length while the handler works."""
    interval = max(context.runtime.settings.job_lease_seconds / 3.0, 0.5)
    while not stop.wait(interval):
        try:
            if not context._renew():
                context._lost.set()
                return
        except Exception:  # a database hiccup: try again at the next beat
            log.exception("lease renewal of job %s failed", context.job_id)


@contextmanager
def _heartbeat_running(context: JobContext) -> Iterator[None]:
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(context, stop), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()


Handler = Callable[[Job, JobContext], str]


def run_job(runtime: Runtime, job_id: int, handler: Handler) -> JobStatus | None:
    """Claim and run a job; returns its final status, or None if it was not ours to run
    (already finished, gone, or held by a live worker) or was handed back because this
    worker is stopping: a quiet success for the task."""
    owner = new_owner_id()
    with session_scope(runtime.session_factory) as session:
        if not claim_job(
            session=session,
            job_id=job_id,
            owner=owner,
            lease_seconds=runtime.settings.job_lease_seconds,
        ):
            return None
        job = get_job(session=session, job_id=job_id)
    context = JobContext(runtime=runtime, job_id=job_id, owner=owner)
    try:
        # samdsk's long computations (SAM on one image, say) stop at their next part too
        with _heartbeat_running(context), interruptible(raise_if_stopping):
            raise_if_stopping()  # a job that reaches a stopping worker goes straight back
            message = handler(job, context)
        status, error = JobStatus.SUCCEEDED, None
    except LeaseLost:
        log.warning("job %s: lease lost, leaving it to its new owner", job_id)
        return None
    except WorkerStopping:
        with session_scope(runtime.session_factory) as session:
            hand_back_job(session=session, job_id=job_id, owner=owner)
        log.info("job %s handed back: this worker is stopping", job_id)
        return None
    except JobCancelled as exc:
        status, message, error = JobStatus.CANCELLED, str(exc), None
    except Exception as exc:
        log.exception("job %s failed", job_id)
        status, message, error = JobStatus.FAILED, str(exc)[:500], traceback.format_exc()
    with session_scope(runtime.session_factory) as session:
        if not finish_job(
            session=session, job_id=job_id, owner=owner, status=status, message=message, error=error
        ):
            return None
    return status
