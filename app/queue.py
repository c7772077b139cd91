"""The task queue seen from the API: work is sent by Celery task name, never by import.

``celery_config`` is the one place that turns settings into broker configuration; the worker
app in ``workers/`` uses it too, so both ends always agree.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from celery import Celery
from kombu import Connection

from app.settings import Settings

log = logging.getLogger(__name__)

TASK_FOR_JOB_KIND = {
    "image_statistics": "samdsk.image_statistics",
    "round": "samdsk.round",
    "proposals": "samdsk.proposals",
    "predict": "samdsk.predict",
}
# Tasks someone waits for at a screen. They go to a queue of their own, which every worker
# consumes besides the main one: a worker takes messages from its queues in turn, so a
# prediction is picked up as soon as a process is free instead of behind a round's backlog.
INTERACTIVE_TASKS = ("samdsk.predict",)


def interactive_queue(settings: Settings) -> str:
    return f"{settings.queue_name}-interactive"


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.resolved_broker_url,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "task_default_queue": settings.queue_name,
        "task_routes": {name: {"queue": interactive_queue(settings)} for name in INTERACTIVE_TASKS},
        "broker_connection_timeout": 5,
        # A publish that cannot reach the broker gives up quickly: the job stays queued in
        # the database and a worker's sweeper sends it later.
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
    }
    if settings.uses_embedded_broker:
        folder = str(settings.broker_folder)
        settings.broker_folder.mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            # Where the transport keeps which queue each exchange routes to (the default is
            # "control" in the working directory): the API and the workers must share it.
            "control_folder": str(settings.broker_folder / "control"),
            "store_processed": False,
        }
        # The filesystem transport has no broadcast exchange for remote control.
        config["worker_enable_remote_control"] = False
    return config


def make_celery_client(settings: Settings, name: str = "samdsk") -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app


class TaskQueue(Protocol):
    def send_job(self, *, kind: str, job_id: int) -> None: ...

    def ping(self) -> str: ...


class CeleryTaskQueue:
    """Sends job tasks through a Celery broker."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._celery = make_celery_client(settings)

    def send_job(self, *, kind: str, job_id: int) -> None:
        task_name = TASK_FOR_JOB_KIND.get(kind)
        if task_name is None:
            raise ValueError(f"no task for job kind {kind!r}; known: {sorted(TASK_FOR_JOB_KIND)}")
        self._celery.send_task(task_name, args=[job_id])

    def ping(self) -> str:
        """Reach the broker once; returns a description, raises on failure."""
        options = self._celery.conf.broker_transport_options or {}
        with Connection(self._settings.resolved_broker_url, transport_options=options) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            return describe_broker(self._settings)


def describe_broker(settings: Settings) -> str:
    if settings.uses_embedded_broker:
        return f"embedded filesystem broker at {settings.broker_folder}"
    url = settings.resolved_broker_url
    return url.split("@")[-1] if "@" in url else url
