"""Model settings are checked when given: a bad one is a 422 that changes nothing, not a round
that fails at training time."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.runtime import Runtime
from tests.uploads import create_project, state_snapshot

BAD_MODEL_SETTINGS = [
    ({"human_share": 1.5}, "human_share"),
    ({"stepz": 300}, "unknown ModelConfig keys"),
    ({"steps": "many"}, "steps must be an integer"),
    ({"input_size": 100}, "multiple of 32"),
    ({"machine_label_weight": -1}, "machine_label_weight"),
    ({"machine_augment": "wild"}, "machine_augment must be one of"),
    ({"keep_empty_share": "yes"}, "keep_empty_share must be a bool"),
    ({"keep_empty_share": True, "human_share": 0.5}, "cannot be combined"),
    ({"mix_human_share": 0.5, "human_share": 0.5}, "mix_human_share"),
    ({"cpu_bf16": "yes"}, "cpu_bf16 must be a bool"),
]


@pytest.mark.parametrize(("model", "message"), BAD_MODEL_SETTINGS)
def test_bad_round_model_settings_are_422_and_start_nothing(
    client: TestClient, runtime: Runtime, model: dict[str, object], message: str
) -> None:
    project = create_project(client)
    base = f"/api/v1/projects/{project['id']}"
    before = state_snapshot(runtime)
    response = client.post(f"{base}/rounds", json={"model": model})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert state_snapshot(runtime) == before
    assert client.get(f"{base}/rounds").json() == []


@pytest.mark.parametrize(("model", "message"), BAD_MODEL_SETTINGS)
def test_bad_project_model_settings_are_422_and_create_nothing(
    client: TestClient, model: dict[str, object], message: str
) -> None:
    response = client.post("/api/v1/projects", json={"name": "p", "model_settings": model})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert client.get("/api/v1/projects").json()["data"] == []


def test_round_settings_override_the_projects_and_are_checked_together(
    client: TestClient,
) -> None:
    project = create_project(client, model_settings={"steps": 50, "human_share": 0.5})
    base = f"/api/v1/projects/{project['id']}"
    # The project's steps stay; the round's share replaces the project's.
    started = client.post(f"{base}/rounds", json={"model": {"human_share": 0.25}})
    assert started.status_code == 201, started.text
    assert started.json()["settings"]["model"] == {"human_share": 0.25}
