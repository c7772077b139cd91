"""A complete round through the API with a real Celery worker: real images with a few human
labels, training on a tiny CPU budget, proposals, matching, review, and the next round. Also:
a worker killed mid-round (SIGKILL) is taken over and the round completes with exactly one
candidate per image; and a round is cancelled cleanly."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.main import create_app
from app.models import Candidate, Job
from app.runtime import Runtime, build_runtime
from app.settings import Settings
from tests.accounts import bearer, make_user
from tests.review_world import truth_mask
from tests.test_workers import REDIS_URL, _require_redis
from tests.uploads import png_bytes, real_image, upload
from tests.workers import WorkerProcess, wait_for

# A tiny CPU budget: the point is the loop, not the model's quality.
TINY_ROUND = {
    "model": {
        "encoder": "resnet18",
        "input_size": 64,
        "steps": 6,
        "batch_size": 2,
        "val_every": 3,
    },
    "threshold": 0.5,
}
LABELED, UNLABELED = 3, 4


@pytest.fixture(params=["sqlite+filesystem", "postgres+redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.param)


@pytest.fixture
def round_settings(backend: str, settings: Settings) -> Settings:
    if backend == "postgres+redis":
        if not settings.resolved_database_url.startswith("postgresql"):
            pytest.skip("this combination runs on the PostgreSQL parametrisation")
        _require_redis()
        settings.broker_url = REDIS_URL
        settings.queue_name = f"samdsk-test-{uuid.uuid4().hex[:8]}"
    elif settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("this combination runs on the SQLite parametrisation")
    settings.job_lease_seconds = 6
    return settings


@pytest.fixture
def project_with_data(
    round_settings: Settings,
) -> Iterator[tuple[Runtime, TestClient, int, list[int]]]:
    runtime = build_runtime(round_settings)
    _, token = make_user(runtime, "root", superuser=True)
    with TestClient(create_app(runtime=runtime), headers=bearer(token)) as client:
        project = client.post(
            "/api/v1/projects",
            json={
                "name": "polyps",
                "class_names": ["polyp"],
                "knowledge": {
                    "polyp": {
                        "min_regions": 1,
                        "max_regions": 3,
                        "min_area": 0.001,
                        "max_area": 0.9,
                    }
                },
            },
        ).json()
        image_ids = []
        for index in range(LABELED + UNLABELED):
            image_path, mask_path = real_image("kvasir_seg", 40 + index)
            image_id = int(upload(client, project["id"], image_path)["image"]["id"])  # type: ignore[index]
            image_ids.append(image_id)
            if index < LABELED:
                labels = f"/api/v1/projects/{project['id']}/images/{image_id}/labels"
                response = client.post(labels, files={"file": ("m.png", mask_path.read_bytes())})
                assert response.status_code == 201
        yield runtime, client, int(project["id"]), image_ids
    runtime.close()


def _wait_round(
    client: TestClient,
    project_id: int,
    number: int,
    worker: WorkerProcess,
    status: str = "succeeded",
) -> dict:  # type: ignore[type-arg]
    url = f"/api/v1/projects/{project_id}/rounds/{number}"
    wait_for(
        lambda: client.get(url).json()["status"] in (status, "failed"),
        600,  # generous: a round retrains from scratch after a crash, and CI cores are shared
        f"round {number}",
        worker.log,
    )
    body: dict = client.get(url).json()  # type: ignore[type-arg]
    assert body["status"] == status, body
    return body


@pytest.mark.slow
def test_round_review_and_next_round(
    project_with_data: tuple, round_settings: Settings, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    runtime, client, project_id, image_ids = project_with_data
    base = f"/api/v1/projects/{project_id}"
    worker = WorkerProcess(round_settings, tmp_path / "worker.log")
    try:
        started = client.post(f"{base}/rounds", json=TINY_ROUND)
        assert started.status_code == 201, started.text
        assert client.post(f"{base}/rounds", json=TINY_ROUND).status_code == 409  # one at a time
        first = _wait_round(client, project_id, 1, worker)
        assert first["counts"]["candidates"] == UNLABELED and first["progress"] == 1.0
        assert first["model_version_id"] and first["metrics"]["model"]["train_images"] == LABELED
        assert "offline" in first["settings"]["effective"]["proposal_source"]
        queue = client.get(f"{base}/review-queue").json()
        assert queue["count"] == UNLABELED
        scores = [c["score"] for c in queue["data"]]
        assert scores == sorted(scores, reverse=True) and [c["rank"] for c in queue["data"]] == [
            1,
            2,
            3,
            4,
        ]
        accept, reject, edit, _last = queue["data"]
        assert client.post(f"{base}/candidates/{accept['id']}/accept").status_code == 200
        assert (
            client.post(
                f"{base}/candidates/{reject['id']}/reject", json={"reason": "wrong region"}
            ).status_code
            == 200
        )
        truth = truth_mask(real_image("kvasir_seg", 40 + image_ids.index(edit["image_id"]))[1])
        edited = client.post(
            f"{base}/candidates/{edit['id']}/edit", files={"file": ("m.png", png_bytes(truth))}
        )
        assert edited.status_code == 200 and edited.json()["source"] == "edited"
        bulk = f"{base}/review-queue/accept-above"
        assert client.post(bulk, json={"threshold": 0.0}).json() == {"accepted": 1}
        assert client.post(bulk, json={"threshold": 0.0}).json() == {"accepted": 0}
        stats = client.get(f"{base}/rounds/1/statistics").json()
        assert (stats["accepted"], stats["rejected"], stats["edited"]) == (2, 1, 1)
        assert 0.0 <= stats["mean_edit_dice"] <= 1.0
        assert client.get(f"{base}/status").json()["labeled"] == LABELED + 3
        assert client.post(f"{base}/rounds", json=TINY_ROUND).status_code == 201
        second = _wait_round(client, project_id, 2, worker)
        assert second["counts"]["labeled_at_start"] == LABELED + 3
        assert second["metrics"]["model"]["train_images"] == LABELED + 3
        # Only the rejected image is still unlabeled; its old mask is not proposed again.
        assert second["counts"]["candidates"] + second["counts"]["skipped_rejected"] == 1
        with runtime.session_factory() as session:
            proposal_jobs = session.scalar(
                select(func.count()).select_from(Job).where(Job.kind == "proposals")
            )
        assert proposal_jobs == UNLABELED + 1
    finally:
        worker.stop()


@pytest.mark.slow
def test_killed_worker_round_resumes_with_one_candidate_per_image(
    project_with_data: tuple,
    round_settings: Settings,
    backend: str,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    if backend != "sqlite+filesystem":
        pytest.skip("the crash test runs once, on the embedded default")
    runtime, client, project_id, _ = project_with_data
    base = f"/api/v1/projects/{project_id}"
    worker = WorkerProcess(round_settings, tmp_path / "first.log", new_session=True)
    slow = {**TINY_ROUND, "model": {**TINY_ROUND["model"], "steps": 400}}  # type: ignore[dict-item]
    assert client.post(f"{base}/rounds", json=slow).status_code == 201
    url = f"{base}/rounds/1"
    wait_for(
        lambda: client.get(url).json()["stages"]["train"]["progress"] > 0.05,
        240,
        "training to start",
        worker.log,
    )
    os.killpg(worker.process.pid, signal.SIGKILL)  # no warm shutdown, no acknowledgement
    worker.stop()
    assert client.get(url).json()["status"] == "running"
    survivor = WorkerProcess(round_settings, tmp_path / "second.log")
    try:
        body = _wait_round(client, project_id, 1, survivor)
    finally:
        survivor.stop()
    with runtime.session_factory() as session:
        per_image = session.execute(
            select(Candidate.image_id, func.count()).group_by(Candidate.image_id)
        ).all()
        job = session.get(Job, body["job_id"])
    assert len(per_image) == UNLABELED and all(count == 1 for _, count in per_image)
    assert job is not None and job.attempts == 2 and job.status.value == "succeeded"


@pytest.mark.slow
def test_cancel_stops_a_round_cleanly(
    project_with_data: tuple, round_settings: Settings, backend: str, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    if backend != "sqlite+filesystem":
        pytest.skip("cancel runs once, on the embedded default")
    _, client, project_id, _ = project_with_data
    base = f"/api/v1/projects/{project_id}"
    worker = WorkerProcess(round_settings, tmp_path / "worker.log")
    try:
        slow = {**TINY_ROUND, "model": {**TINY_ROUND["model"], "steps": 2000}}  # type: ignore[dict-item]
        assert client.post(f"{base}/rounds", json=slow).status_code == 201
        wait_for(
            lambda: client.get(f"{base}/rounds/1").json()["stage"] == "train",
            120,
            "training",
            worker.log,
        )
        cancelled = client.post(f"{base}/rounds/1/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"]
        body = _wait_round(client, project_id, 1, worker, status="cancelled")
        assert body["finished_at"] is not None
        job = client.get(f"/api/v1/jobs/{body['job_id']}").json()
        wait_for(
            lambda: client.get(f"/api/v1/jobs/{body['job_id']}").json()["status"] == "cancelled",
            30,
            "job",
            worker.log,
        )
        assert job["status"] in ("running", "cancelled")
        assert client.post(f"{base}/rounds/1/cancel").status_code == 409
        assert client.post(f"{base}/rounds", json=TINY_ROUND).status_code == 201  # free again
    finally:
        worker.stop()
