"""A round's training with ``machine_augment="auto"``: one model per perturbation policy on the
project's real labels, the better validated one registered under the policy it trained with,
and the choice in the round's metrics; without validation labels only the default trains."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.models import Job, JobStatus, ModelVersion, Project, Round
from app.runtime import Runtime
from samdsk.model import ModelConfig
from tests.uploads import create_project, real_image, upload
from workers.rounds.data import is_validation
from workers.rounds.tracker import RoundTracker
from workers.rounds.training import MIN_HUMAN_LABELS_FOR_VALIDATION, train_or_resume
from workers.runner import JobContext, run_job

TINY_MODEL = {
    "encoder": "resnet18",
    "input_size": 64,
    "steps": 4,
    "batch_size": 2,
    "val_every": 2,
    "machine_augment": "auto",
}


def _labelled_project(client: TestClient, want_validation: bool) -> int:
    """A project whose human labels do (or do not) include a validation image."""
    project = create_project(client, class_names=["polyp"], model_settings=TINY_MODEL)
    base = f"/api/v1/projects/{project['id']}"
    ids: list[int] = []
    for index in range(20):
        image_path, mask_path = real_image("kvasir_seg", index)
        image_id = int(upload(client, project["id"], image_path)["image"]["id"])  # type: ignore[index]
        if not want_validation and is_validation(image_id):
            continue  # leave it unlabelled
        labels = f"{base}/images/{image_id}/labels"
        response = client.post(labels, files={"file": ("m.png", mask_path.read_bytes())})
        assert response.status_code == 201, response.text
        ids.append(image_id)
        enough = len(ids) >= MIN_HUMAN_LABELS_FOR_VALIDATION
        if enough and (not want_validation or any(map(is_validation, ids))):
            return int(project["id"])  # type: ignore[arg-type]
    raise AssertionError("no validation image among 20 uploads")


def _train_round(runtime: Runtime, client: TestClient, want_validation: bool) -> dict[str, Any]:
    """Start a round of a new project through the API, then run only its training stage here."""
    project_id = _labelled_project(client, want_validation)
    started = client.post(f"/api/v1/projects/{project_id}/rounds", json={})
    assert started.status_code == 201, started.text
    round_id = int(started.json()["id"])
    with runtime.session_factory() as session:
        job_id = session.scalars(select(Job.id).where(Job.round_id == round_id)).one()
        project = session.get(Project, project_id)
        assert project is not None
        session.expunge(project)
    config = ModelConfig.from_dict({"num_classes": 1, **TINY_MODEL})

    def handler(job: Job, context: JobContext) -> str:
        tracker = RoundTracker(context, round_id, min_interval=0.0)
        return str(train_or_resume(runtime, round_id, project, config, tracker).version_id)

    assert run_job(runtime, job_id, handler) is JobStatus.SUCCEEDED
    with runtime.session_factory() as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None and round_.model_version_id is not None
        version = session.get(ModelVersion, round_.model_version_id)
        assert version is not None
        metrics = round_.metrics["model"]
        return {"metrics": metrics, "stages": round_.stages, "config": version.config}


@pytest.mark.slow
def test_auto_trains_each_policy_and_registers_the_better_validated_one(
    runtime: Runtime, client: TestClient
) -> None:
    trained = _train_round(runtime, client, want_validation=True)
    metrics = trained["metrics"]
    choice = metrics["augment_choice"]
    assert list(choice["val_dice"]) == ["same", "strong_all"]
    assert all(isinstance(v, float) for v in choice["val_dice"].values())
    best = max(choice["val_dice"].values())
    assert choice["val_dice"][choice["chosen"]] == best and metrics["val_dice"] == best
    assert metrics["augment"] == choice["chosen"] == trained["config"]["machine_augment"]
    assert metrics["val_images"] >= 1 and trained["stages"]["train"]["progress"] == 1.0


@pytest.mark.slow
def test_auto_without_validation_labels_trains_the_default_only(
    runtime: Runtime, client: TestClient
) -> None:
    trained = _train_round(runtime, client, want_validation=False)
    metrics = trained["metrics"]
    assert metrics["val_images"] == 0 and metrics["val_dice"] is None
    assert metrics["augment_choice"] == {"chosen": "same", "val_dice": {"same": None}}
    assert metrics["augment"] == trained["config"]["machine_augment"] == "same"


def test_auto_is_a_project_setting_the_api_accepts(client: TestClient) -> None:
    response = client.post(
        "/api/v1/projects", json={"name": "p", "model_settings": {"machine_augment": "auto"}}
    )
    assert response.status_code == 201, response.text
    assert response.json()["model_settings"] == {"machine_augment": "auto"}
