"""The Celery application of the workers, configured from the same settings as the API.

Start a worker with ``celery -A workers.celery_app worker`` (``samdsk worker`` does this).
Each worker process also runs a sweeper thread that re-sends tasks for jobs whose message
was lost or whose worker died, so no job depends on one message being delivered. A worker
told to stop (SIGTERM, Ctrl-C) has its running jobs hand themselves back at their next progress
report instead of waiting for them to finish; the next worker's sweeper sends them again as
soon as that worker is ready.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from celery import Celery, signals
from celery.worker import state

from app.queue import celery_config
from app.services.dispatch import sweep_jobs
from app.settings import get_settings
from workers.context import reset_after_fork, worker_runtime
from workers.rounds.pipeline import run_round_job
from workers.rounds.proposals import compute_proposals_job
from workers.runner import request_stop, run_job
from workers.tasks.image_statistics import compute_image_statistics
from workers.tasks.predict import predict_image

log = logging.getLogger(__name__)

celery_app = Celery("samdsk")
celery_app.conf.update(celery_config(get_settings()))
app = celery_app


@celery_app.task(name="samdsk.image_statistics", acks_late=True)
def image_statistics(job_id: int) -> str | None:
    runtime = worker_runtime()
    status = run_job(runtime, job_id, lambda job, ctx: compute_image_statistics(runtime, job, ctx))
    return status.value if status else None


@celery_app.task(name="samdsk.round", acks_late=True)
def round_task(job_id: int) -> str | None:
    runtime = worker_runtime()
    status = run_job(runtime, job_id, lambda job, ctx: run_round_job(runtime, job, ctx))
    return status.value if status else None


@celery_app.task(name="samdsk.proposals", acks_late=True)
def proposals_task(job_id: int) -> str | None:
    runtime = worker_runtime()
    status = run_job(runtime, job_id, lambda job, ctx: compute_proposals_job(runtime, job, ctx))
    return status.value if status else None


@celery_app.task(name="samdsk.predict", acks_late=True)
def predict_task(job_id: int) -> str | None:
    runtime = worker_runtime()
    status = run_job(runtime, job_id, lambda job, ctx: predict_image(runtime, job, ctx))
    return status.value if status else None


_sweeper_stop = threading.Event()


def _sweep_forever() -> None:
    runtime = worker_runtime()
    interval = runtime.settings.job_sweep_seconds
    while True:
        try:
            sent = sweep_jobs(
                session_factory=runtime.session_factory,
                queue=runtime.queue,
                resend_after=max(interval * 2, 5),
            )
            if sent:
                log.info("sweeper re-sent %d job(s)", sent)
        except Exception:  # keep sweeping through database or broker hiccups
            log.exception("job sweep failed")
        if _sweeper_stop.wait(interval):
            return


@signals.worker_ready.connect
def _start_sweeper(**_kwargs: Any) -> None:
    threading.Thread(target=_sweep_forever, name="job-sweeper", daemon=True).start()


# Celery's shutdown signals reach only the worker's main process; it passes the stop on to the
# pool processes running a task with this one (billiard raises soft time limits with SIGUSR1).
STOP_SIGNAL = signal.SIGUSR2


def _on_stop_signal(_signum: int, _frame: FrameType | None) -> None:
    request_stop()


@signals.task_prerun.connect
def _listen_for_stop(**_kwargs: Any) -> None:
    """Also before each task: the thread-backed pool (the filesystem broker's) points SIGUSR2
    at its exit handler after worker_process_init."""
    if threading.current_thread() is threading.main_thread():  # not so in a thread pool
        signal.signal(STOP_SIGNAL, _on_stop_signal)


@signals.worker_process_init.connect
def _fresh_connections(**_kwargs: Any) -> None:
    reset_after_fork()
    _listen_for_stop()


def _busy_pool_pids() -> set[int]:
    """Pool processes running a task. Only those: an idle one has no job to hand back, and
    the thread-backed pool's processes exit on SIGUSR2 until their first task."""
    for _ in range(3):
        try:  # other threads add and drop requests as tasks start and end
            requests = list(state.active_requests)
        except RuntimeError:
            continue
        return {r.worker_pid for r in requests if r.worker_pid} - {os.getpid()}
    return set()


@signals.worker_shutting_down.connect
def _hand_back_jobs(**_kwargs: Any) -> None:
    """Sent in the main process on SIGTERM or Ctrl-C; Celery's warm shutdown then waits for
    the running tasks, which hand their jobs back at their next progress report."""
    request_stop()  # tasks of a solo or thread pool run in this process
    for pid in _busy_pool_pids():
        with contextlib.suppress(ProcessLookupError):  # its task ended meanwhile
            os.kill(pid, STOP_SIGNAL)


@signals.worker_shutdown.connect
def _stop_sweeper(**_kwargs: Any) -> None:
    _sweeper_stop.set()
