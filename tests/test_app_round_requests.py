"""Starting a round: what a worker could only fail on later is refused when the round is asked
for, and the refusal changes nothing (no round, no job, no round number used)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.models import Project, Round, RoundStatus
from app.runtime import Runtime
from tests.uploads import create_project, png_bytes, state_snapshot
from workers.rounds.pipeline import _effective_settings


def label_an_image(client: TestClient, project_id: object) -> None:
    """Upload one small image with a human mask (a bright square on a dark field)."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = 200
    mask = np.where(image[..., 0] > 0, 255, 0).astype(np.uint8)
    base = f"/api/v1/projects/{project_id}/images"
    uploaded = client.post(base, files={"file": ("square.png", png_bytes(image))})
    assert uploaded.status_code == 201, uploaded.text
    labels = f"{base}/{uploaded.json()['image']['id']}/labels"
    labeled = client.post(labels, files={"file": ("square.png", png_bytes(mask))})
    assert labeled.status_code == 201, labeled.text


def labeled_project(client: TestClient, name: str = "polyps", **extra: object) -> dict[str, Any]:
    """A project with one human label, so that a round has something to train on."""
    project = create_project(client, name, **extra)
    label_an_image(client, project["id"])
    return project


def test_a_round_without_any_label_is_409_and_uses_no_round_number(
    client: TestClient, runtime: Runtime
) -> None:
    project = create_project(client)
    base = f"/api/v1/projects/{project['id']}"
    before = state_snapshot(runtime)
    refused = client.post(f"{base}/rounds", json={})
    assert refused.status_code == 409, refused.text
    assert "no labeled images" in refused.json()["error"]["message"]
    assert state_snapshot(runtime) == before
    assert client.get(f"{base}/rounds").json() == []
    label_an_image(client, project["id"])
    started = client.post(f"{base}/rounds", json={})
    assert started.status_code == 201, started.text
    assert started.json()["number"] == 1


def test_an_unknown_round_setting_is_named_not_dropped(
    client: TestClient, runtime: Runtime
) -> None:
    project = labeled_project(client)
    before = state_snapshot(runtime)
    url = f"/api/v1/projects/{project['id']}/rounds"
    refused = client.post(url, json={"threshold": 0.5, "bogus": 1})
    assert refused.status_code == 422, refused.text
    assert "bogus" in refused.json()["error"]["message"]
    assert state_snapshot(runtime) == before
    assert client.get(url).json() == []


def test_weight_paths_stored_in_an_older_project_are_never_used(
    client: TestClient, runtime: Runtime, tmp_path: Path
) -> None:
    created = labeled_project(client)
    with runtime.session_factory() as session:
        project = session.get(Project, created["id"])
        assert project is not None
        # as a project created before clients were refused these settings may hold them
        project.model_settings = {
            "encoder_weights_path": "/etc/shadow",
            "init_weights_path": "/srv/other-project/round-3.pt",
        }
        session.commit()
        session.expunge(project)
    started = client.post(f"/api/v1/projects/{created['id']}/rounds", json={})
    assert started.status_code == 201, started.text
    model = _effective_settings(runtime, project, started.json()["settings"])["model"]
    assert model["encoder_weights_path"] is None and model["init_weights_path"] is None
    # the server's own encoder weights still reach the worker
    runtime.settings.encoder_weights = tmp_path / "imagenet.pth"
    model = _effective_settings(runtime, project, started.json()["settings"])["model"]
    assert model["encoder_weights_path"] == str(tmp_path / "imagenet.pth")
    assert model["init_weights_path"] is None


# Each of these was a 201 whose round then tied up a worker (thousands of segmentations per
# image, masks of a billion pixels) or failed in it (a network smp cannot build).
DENIED_ROUNDS: list[tuple[dict[str, Any], str]] = [
    ({"proposals": {"work_size": 1_000_000_000}}, "work_size must be at most 1024"),
    ({"proposals": {"work_size": 99999999999999999999999}}, "work_size must be at most"),
    (
        {"proposals": {"superpixel_counts": [1_000_000] * 5000, "coarse_scales": [1e300]}},
        "superpixel_counts must be a list of at most 8 numbers; got 5000 entries",
    ),
    ({"proposals": {"max_proposals": 1_000_000_000}}, "max_proposals must be at most 1000"),
    (
        {"model": {"arch": "DPT", "encoder": "resnet18"}},
        "Only Timm encoders are supported for DPT",
    ),
]


@pytest.mark.parametrize(("request_body", "message"), DENIED_ROUNDS)
def test_a_round_a_worker_could_not_finish_or_build_is_422_and_starts_nothing(
    client: TestClient, runtime: Runtime, request_body: dict[str, Any], message: str
) -> None:
    project = labeled_project(client)
    url = f"/api/v1/projects/{project['id']}/rounds"
    before = state_snapshot(runtime)
    refused = client.post(url, json=request_body)
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["error"]["message"]
    assert state_snapshot(runtime) == before
    assert client.get(url).json() == []
    assert client.post(url, json={}).status_code == 201  # the project itself is fine


def test_asking_a_running_round_to_stop_twice_records_one_request(
    client: TestClient, runtime: Runtime
) -> None:
    project = labeled_project(client)
    base = f"/api/v1/projects/{project['id']}"
    started = client.post(f"{base}/rounds", json={})
    assert started.status_code == 201, started.text
    with runtime.session_factory() as session:  # as a worker that took it up
        round_ = session.get(Round, started.json()["id"])
        assert round_ is not None
        round_.status = RoundStatus.RUNNING
        session.commit()
    first = client.post(f"{base}/rounds/1/cancel")
    again = client.post(f"{base}/rounds/1/cancel")
    assert first.status_code == again.status_code == 200
    assert first.json()["cancel_requested"] and again.json()["status"] == "running"
    events = client.get(f"{base}/audit").json()["data"]
    assert [e["action"] for e in events].count("round.cancel") == 1


def test_a_threshold_that_is_not_a_number_is_named_so(client: TestClient) -> None:
    project = labeled_project(client)
    for value in ("NaN", "inf"):
        refused = client.post(f"/api/v1/projects/{project['id']}/rounds", json={"threshold": value})
        assert refused.status_code == 422
        assert "finite number" in refused.json()["error"]["message"], refused.text
