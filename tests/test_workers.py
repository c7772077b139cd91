"""Jobs run by a real Celery worker process: on the embedded filesystem broker and on Redis;
lease takeover after a worker died; and idempotent tasks."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from app.models import Image, Job, JobStatus, utcnow
from app.runtime import Runtime
from app.settings import Settings
from tests.accounts import bearer, make_user
from tests.databases import IN_CI
from tests.uploads import create_project, real_image, upload
from tests.workers import WorkerProcess, wait_for
from workers.runner import JobContext, run_job
from workers.tasks.image_statistics import compute_image_statistics, thumbnail_key

REDIS_URL = "redis://127.0.0.1:6379/7"


def _require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis tests skipped: {REDIS_URL} unreachable: {exc}")


@pytest.fixture(params=["filesystem", "redis"])
def broker_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "redis":
        _require_redis()
        settings.broker_url = REDIS_URL
        settings.queue_name = f"samdsk-test-{uuid.uuid4().hex[:8]}"
    return settings


@pytest.fixture
def worker(broker_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(broker_settings, tmp_path / "worker.log")
    yield process
    process.stop()


def _job_status(runtime: Runtime, job_id: int) -> Job:
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


@pytest.mark.slow
def test_upload_job_succeeds_on_real_worker(
    broker_settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    from app.main import create_app
    from app.runtime import build_runtime

    runtime = build_runtime(broker_settings)
    _, token = make_user(runtime, "root", superuser=True)
    with TestClient(create_app(runtime=runtime), headers=bearer(token)) as client:
        project = create_project(client)
        body = upload(client, project["id"], real_image("kvasir_seg", 5)[0])
        job_url = f"/api/v1/jobs/{body['job_id']}"
        wait_for(
            lambda: client.get(job_url).json()["status"] == "succeeded",
            60,
            "the statistics job",
            worker.log,
        )
        job = client.get(job_url).json()
        assert job["progress"] == 1.0 and job["attempts"] == 1
        image_url = f"/api/v1/projects/{project['id']}/images/{body['image']['id']}"  # type: ignore[index]
        image = client.get(image_url).json()
        assert image["has_thumbnail"] is True
        assert len(image["statistics"]["channels"]) == 3
        thumbnail = client.get(f"{image_url}/thumbnail")
        assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\x89PNG")
    runtime.close()


def _upload_without_dispatch(runtime: Runtime, client: TestClient) -> tuple[int, int]:
    project = create_project(client)
    body = upload(client, project["id"], real_image("ph2", 4)[0])
    return int(body["image"]["id"]), int(body["job_id"])  # type: ignore[index, call-overload]


@pytest.mark.slow
@pytest.mark.parametrize("broker_settings", ["filesystem"], indirect=True)
def test_expired_lease_is_taken_over_and_finishes_once(
    broker_settings: Settings, tmp_path: Path
) -> None:
    from app.main import create_app
    from app.runtime import build_runtime

    runtime = build_runtime(broker_settings)
    _, token = make_user(runtime, "root", superuser=True)
    with TestClient(create_app(runtime=runtime), headers=bearer(token)) as client:
        _, job_id = _upload_without_dispatch(runtime, client)
    # A worker claimed the job and died: its lease ran out, its message is gone.
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.RUNNING
        job.lease_owner = "dead-worker"
        job.lease_expires_at = utcnow() - timedelta(seconds=5)
        job.attempts = 1
        job.dispatched_at = utcnow() - timedelta(hours=1)
        session.commit()
    # Its message is gone too: only the sweeper can bring the job back.
    shutil.rmtree(broker_settings.broker_folder)
    broker_settings.broker_folder.mkdir()
    worker = WorkerProcess(broker_settings, tmp_path / "worker.log")
    try:
        wait_for(
            lambda: _job_status(runtime, job_id).status is JobStatus.SUCCEEDED,
            60,
            "the takeover",
            worker.log,
        )
    finally:
        worker.stop()
    job = _job_status(runtime, job_id)
    assert job.attempts == 2 and job.lease_owner is None and job.finished_at is not None
    runtime.close()


def test_live_lease_is_not_taken(runtime: Runtime, client: TestClient) -> None:
    _, job_id = _upload_without_dispatch(runtime, client)
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.RUNNING
        job.lease_owner = "busy-worker"
        job.lease_expires_at = utcnow() + timedelta(minutes=5)
        session.commit()
    ran: list[int] = []
    assert run_job(runtime, job_id, lambda job, ctx: str(ran.append(job.id))) is None
    assert ran == [] and _job_status(runtime, job_id).lease_owner == "busy-worker"


def test_running_a_task_twice_changes_nothing(runtime: Runtime, client: TestClient) -> None:
    image_id, job_id = _upload_without_dispatch(runtime, client)

    def handler(job: Job, context: JobContext) -> str:
        return compute_image_statistics(runtime, job, context)

    def results() -> tuple[object, ...]:
        with runtime.session_factory() as session:
            image = session.get(Image, image_id)
            assert image is not None
            return (
                image.thumbnail_key,
                image.statistics,
                runtime.storage.list_keys(),
                runtime.storage.get(thumbnail_key(image_id)),
            )

    assert run_job(runtime, job_id, handler) is JobStatus.SUCCEEDED
    first, finished = results(), _job_status(runtime, job_id)
    # A redelivered message finds the job done: a quiet success that touches nothing.
    assert run_job(runtime, job_id, handler) is None
    assert results() == first
    assert _job_status(runtime, job_id).finished_at == finished.finished_at
    # Running the task body again from scratch rewrites identical results.
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.QUEUED
        session.commit()
    assert run_job(runtime, job_id, handler) is JobStatus.SUCCEEDED
    assert results() == first
