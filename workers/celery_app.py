"""The Celery application of the workers, configured from the same settings as the API.

Start a worker with ``celery -A workers.celery_app worker`` (``samdsk worker`` does this).
Each worker process also runs a sweeper thread that re-sends tasks for jobs whose message
was lost or whose worker died, so no job depends on one message being delivered.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, signals

from app.queue import celery_config
from app.services.dispatch import sweep_jobs
from app.settings import get_settings
from workers.context import reset_after_fork, worker_runtime
from workers.rounds.pipeline import run_round_job
from workers.rounds.proposals import compute_proposals_job
from workers.runner import run_job
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


@signals.worker_process_init.connect
def _fresh_connections(**_kwargs: Any) -> None:
    reset_after_fork()


@signals.worker_shutdown.connect
def _stop_sweeper(**_kwargs: Any) -> None:
    _sweeper_stop.set()
