"""A worker told to stop (SIGTERM, Ctrl-C) while a job runs: the job hands itself back at its
next progress report, the worker exits cleanly, and the next worker takes the job over at once
instead of after its lease runs out."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.cli import STOP_SECONDS
from app.db import session_scope
from app.main import create_app
from app.models import Job, JobStatus, ModelVersion, Project, Round, utcnow
from app.runtime import Runtime, build_runtime
from app.services.jobs import create_job, jobs_to_dispatch
from app.settings import Settings
from samdsk.model import ModelConfig, load_checkpoint, train_model
from samdsk.model.resume import TrainingState
from samdsk.proposals import OfflineProposalSource
from tests.accounts import bearer, make_user
from tests.test_workers import REDIS_URL, _require_redis
from tests.test_workers_augment_choice import TINY_MODEL, _labelled_project
from tests.tiny_sam import kvasir_image
from tests.uploads import real_image, upload
from tests.workers import WorkerProcess, wait_for
from workers import runner
from workers.rounds.snapshots import snapshot_prefix
from workers.rounds.tracker import RoundTracker
from workers.rounds.training import load_training_samples, train_or_resume
from workers.runner import HANDED_BACK, JobContext, WorkerStopping, request_stop, run_job


@pytest.fixture(autouse=True)
def fresh_process() -> Iterator[None]:
    """Each test starts as a process nobody asked to stop, and leaves none behind."""
    saved = runner._stopping
    runner._stopping = threading.Event()
    yield
    runner._stopping = saved


def _new_job(runtime: Runtime) -> int:
    with session_scope(runtime.session_factory) as session:
        return create_job(session=session, kind="image_statistics").id


def _job(runtime: Runtime, job_id: int) -> Job:
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _is_swept(runtime: Runtime, job_id: int) -> bool:
    """Whether a sweep now sends the job a task (a message that was sent just now counts)."""
    with runtime.session_factory() as session:
        due = jobs_to_dispatch(session=session, now=utcnow(), resend_after=3600)
        return job_id in [job.id for job in due]


def test_a_stopping_worker_hands_its_job_back_for_the_next_one(runtime: Runtime) -> None:
    job_id = _new_job(runtime)
    started = threading.Event()
    reports = 0

    def endless(job: Job, context: JobContext) -> str:
        nonlocal reports
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # a training loop, reporting every step
            context.progress(0.5, "training")
            reports += 1
            started.set()
            time.sleep(0.02)
        return "ran to the end"

    def stop_when_started() -> None:
        started.wait(10)
        request_stop()  # what the worker's shutdown signal does in the pool process

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    begun = time.monotonic()
    assert run_job(runtime, job_id, endless) is None
    stopper.join()
    assert time.monotonic() - begun < 5 and reports > 0
    job = _job(runtime, job_id)
    assert job.status is JobStatus.RUNNING and job.lease_owner is None
    assert job.lease_expires_at is not None and job.lease_expires_at < utcnow()
    assert job.message == HANDED_BACK and job.progress == 0.5 and job.finished_at is None
    assert _is_swept(runtime, job_id)

    runner._stopping = threading.Event()  # the next worker process
    assert run_job(runtime, job_id, lambda job, ctx: "done") is JobStatus.SUCCEEDED
    job = _job(runtime, job_id)
    assert job.attempts == 2 and job.message == "done" and job.lease_owner is None


def test_a_job_reaching_a_stopping_worker_goes_straight_back(runtime: Runtime) -> None:
    job_id = _new_job(runtime)
    request_stop()
    ran: list[int] = []

    def handler(job: Job, context: JobContext) -> str:
        ran.append(job.id)
        return "ran"

    assert run_job(runtime, job_id, handler) is None
    assert ran == []
    job = _job(runtime, job_id)
    assert job.status is JobStatus.RUNNING and job.message == HANDED_BACK
    assert _is_swept(runtime, job_id)


def test_a_failure_handler_does_not_turn_a_stop_into_a_failure(runtime: Runtime) -> None:
    """A handler that records its errors (a round marks itself failed) lets the stop pass."""
    job_id = _new_job(runtime)
    recorded: list[Exception] = []

    def careful(job: Job, context: JobContext) -> str:
        try:
            request_stop()
            context.progress(0.1)
        except Exception as exc:
            recorded.append(exc)
        return "not reached"

    assert run_job(runtime, job_id, careful) is None
    assert recorded == [] and _job(runtime, job_id).status is JobStatus.RUNNING


def test_a_stop_interrupts_the_work_on_one_image(runtime: Runtime) -> None:
    """Proposals for one image (seconds with SAM on a CPU) stop at their next part instead of
    holding the stop up until the image is done."""
    job_id = _new_job(runtime)
    image = kvasir_image(256)
    finished: list[int] = []

    def one_image(job: Job, context: JobContext) -> str:
        request_stop()  # the signal arrives while the image is being worked on
        finished.append(len(OfflineProposalSource().propose(image)))
        return "proposed"

    assert run_job(runtime, job_id, one_image) is None
    assert finished == []
    job = _job(runtime, job_id)
    assert job.status is JobStatus.RUNNING and job.message == HANDED_BACK


def test_a_round_notices_the_stop_between_its_throttled_updates() -> None:
    class Silent:
        """The part of a JobContext a RoundTracker uses; it would fail if reached."""

        runtime = None

    tracker = RoundTracker(Silent(), round_id=1, min_interval=3600.0)  # type: ignore[arg-type]
    tracker._last = time.monotonic()  # within the once-a-second limit: nothing is written
    tracker.update("train", 0.2)
    request_stop()
    with pytest.raises(WorkerStopping):
        tracker.update("train", 0.3)


class StopAfter(RoundTracker):
    """A round's tracker that asks the worker to stop once training passes ``fraction``, and
    records the training fractions it is given."""

    def __init__(self, context: JobContext, round_id: int, fraction: float = 2.0) -> None:
        super().__init__(context, round_id, min_interval=0.0)
        self.fraction = fraction
        self.seen: list[float] = []

    def update(self, stage: str, fraction: float, *, force: bool = False) -> None:
        super().update(stage, fraction, force=force)
        self.seen.append(fraction)
        if stage == "train" and fraction >= self.fraction:
            request_stop()


def test_a_round_stopped_mid_training_goes_on_from_its_snapshot(
    runtime: Runtime, client: TestClient
) -> None:
    """Stopped after step 3 of 6 (saved at step 4, where the stop is noticed), the next
    attempt trains steps 5 and 6 only, and registers the model an uninterrupted training
    makes; the snapshot is then removed."""
    project_id = _labelled_project(client, want_validation=False)
    started = client.post(f"/api/v1/projects/{project_id}/rounds", json={})
    assert started.status_code == 201, started.text
    round_id, job_id = int(started.json()["id"]), int(started.json()["job_id"])
    with runtime.session_factory() as session:
        project = session.get(Project, project_id)
        assert project is not None
        session.expunge(project)
    config = ModelConfig.from_dict(
        {"num_classes": 1, **TINY_MODEL, "machine_augment": "same", "steps": 6, "cpu_threads": 1}
    )
    trackers: list[StopAfter] = []

    def handler(job: Job, context: JobContext) -> str:
        trackers.append(StopAfter(context, round_id, 0.5 if not trackers else 2.0))
        return str(train_or_resume(runtime, round_id, project, config, trackers[-1]).version_id)

    assert run_job(runtime, job_id, handler) is None  # handed back
    snapshots = runtime.storage.list_keys(snapshot_prefix(project_id, 1))
    assert snapshots == [f"{snapshot_prefix(project_id, 1)}same.pt"]
    assert TrainingState.from_bytes(runtime.storage.get(snapshots[0])).step == 4
    first_seconds = _train_stage(runtime, round_id)["seconds"]

    runner._stopping = threading.Event()  # the next worker process
    assert run_job(runtime, job_id, handler) is JobStatus.SUCCEEDED
    # begin goes on from the first attempt's last report (step 3), then steps 5 and 6, end
    assert trackers[1].seen == [3 / 6, 5 / 6, 1.0, 1.0]
    assert _train_stage(runtime, round_id)["seconds"] >= first_seconds  # both attempts count
    assert runtime.storage.list_keys(snapshot_prefix(project_id, 1)) == []
    train, val = load_training_samples(runtime, project, config)
    whole = train_model(train, config, val=val).model.state_dict()
    with runtime.session_factory() as session:
        version = session.scalars(
            select(ModelVersion).where(ModelVersion.round_id == round_id)
        ).one()
        key = version.checkpoint_key
    path = runtime.settings.data_dir / "registered.pt"
    path.write_bytes(runtime.storage.get(key))
    registered, _ = load_checkpoint(path)
    for name, weights in registered.state_dict().items():
        assert torch.equal(weights, whole[name]), name


def _train_stage(runtime: Runtime, round_id: int) -> dict[str, float]:
    with runtime.session_factory() as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        return dict(round_.stages["train"])


# A round that trains for far longer than the test waits.
ENDLESS_ROUND = {
    "model": {"encoder": "resnet18", "input_size": 64, "steps": 2000, "batch_size": 2},
    "threshold": 0.5,
}


@pytest.fixture(params=["sqlite+filesystem", "postgres+redis"])
def stop_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Both pools Celery picks: the filesystem broker's thread-backed one, Redis's async one."""
    on_postgres = settings.resolved_database_url.startswith("postgresql")
    if (request.param == "postgres+redis") != on_postgres:
        pytest.skip(f"{request.param} runs on its own database's parametrisation")
    if request.param == "postgres+redis":
        _require_redis()
        settings.broker_url = REDIS_URL
        settings.queue_name = f"samdsk-test-{uuid.uuid4().hex[:8]}"
    # The default lease and a sweep far apart: a takeover within seconds is the hand-back
    # and the sweep at start, not an expired lease or a periodic sweep.
    settings.job_lease_seconds = 120
    settings.job_sweep_seconds = 60
    return settings


def _sigterm(worker: WorkerProcess) -> float:
    """Stop the worker as `samdsk run` does; returns how long it took."""
    begun = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.wait(timeout=STOP_SECONDS)
    finally:
        worker.stop()
    assert worker.process.returncode == 0, worker.log()
    return time.monotonic() - begun


@pytest.mark.slow
def test_sigterm_mid_round_exits_cleanly_and_the_next_worker_resumes_at_once(
    stop_settings: Settings, tmp_path: Path
) -> None:
    runtime = build_runtime(stop_settings)
    _, token = make_user(runtime, "root", superuser=True)
    with TestClient(create_app(runtime=runtime), headers=bearer(token)) as client:
        project = client.post("/api/v1/projects", json={"name": "polyps"}).json()
        base = f"/api/v1/projects/{project['id']}"
        for index in range(3):
            image_path, mask_path = real_image("kvasir_seg", 40 + index)
            image_id = upload(client, project["id"], image_path)["image"]["id"]  # type: ignore[index]
            labels = f"{base}/images/{image_id}/labels"
            assert client.post(labels, files={"file": ("m.png", mask_path.read_bytes())}).is_success
        first = WorkerProcess(stop_settings, tmp_path / "first.log")
        try:
            started = client.post(f"{base}/rounds", json=ENDLESS_ROUND)
            assert started.status_code == 201, started.text
            job_id = started.json()["job_id"]
            wait_for(
                lambda: client.get(f"{base}/rounds/1").json()["stages"]["train"]["progress"] > 0,
                120,
                "training to start",
                first.log,
            )
        finally:
            seconds = _sigterm(first)
        assert seconds < STOP_SECONDS / 2, first.log()
        assert f"job {job_id} handed back" in first.log()
        job = _job(runtime, job_id)
        assert job.status is JobStatus.RUNNING and job.lease_owner is None and job.attempts == 1
        assert job.lease_expires_at is not None
        assert job.lease_expires_at < utcnow() + timedelta(seconds=1), "the lease was kept"
        assert client.get(f"{base}/rounds/1").json()["status"] == "running"
        snapshot = runtime.storage.get(f"{snapshot_prefix(project['id'], 1)}same.pt")
        stopped_at = TrainingState.from_bytes(snapshot).step
        assert 0 < stopped_at < ENDLESS_ROUND["model"]["steps"]  # type: ignore[index]

        second = WorkerProcess(stop_settings, tmp_path / "second.log")
        try:
            wait_for(lambda: _job(runtime, job_id).attempts == 2, 20, "the takeover", second.log)
            assert _job(runtime, job_id).lease_owner is not None
            going_on = f"going on from the training snapshot 'same' at step {stopped_at} of"
            wait_for(lambda: going_on in second.log(), 60, "training to go on", second.log)
        finally:
            _sigterm(second)
    runtime.close()
