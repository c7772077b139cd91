"""Running one job under a lease: claim, heartbeat while working, finish as the owner.

A handler gets a :class:`JobContext` to report progress. If another worker took the job over
(this one stalled past its lease), progress reports raise :class:`LeaseLost` and the handler's
work is abandoned without touching the job row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from app.db import session_scope
from app.models import Job, JobStatus
from app.runtime import Runtime
from app.services.jobs import claim_job, finish_job, get_job, report_progress

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """Another worker owns the job now."""


class JobCancelled(RuntimeError):
    """Someone asked the job to stop; it ends as cancelled, not failed."""


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


Handler = Callable[[Job, JobContext], str]


def run_job(runtime: Runtime, job_id: int, handler: Handler) -> JobStatus | None:
    """Claim and run a job; returns its final status, or None if it was not ours to run
    (already finished, gone, or held by a live worker): a quiet success for the task."""
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
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(context, stop), daemon=True)
    beat.start()
    try:
        message = handler(job, context)
        status, error = JobStatus.SUCCEEDED, None
    except LeaseLost:
        log.warning("job %s: lease lost, leaving it to its new owner", job_id)
        return None
    except JobCancelled as exc:
        status, message, error = JobStatus.CANCELLED, str(exc), None
    except Exception as exc:
        log.exception("job %s failed", job_id)
        status, message, error = JobStatus.FAILED, str(exc)[:500], traceback.format_exc()
    finally:
        stop.set()
        beat.join()
    with session_scope(runtime.session_factory) as session:
        if not finish_job(
            session=session, job_id=job_id, owner=owner, status=status, message=message, error=error
        ):
            return None
    return status
