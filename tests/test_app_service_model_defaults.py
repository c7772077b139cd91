"""The service's model defaults: where neither a project nor its round says otherwise, a round
trains under the perturbation chosen on the project's validation labels ("auto", with peer
maps) and with the mix rule for the human share; whatever a project or round gives wins, and a
human share fixed another way leaves the mix rule out instead of being refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.models import Project
from app.runtime import Runtime
from samdsk.model import ModelConfig
from tests.test_app_round_requests import labeled_project
from workers.rounds.pipeline import _effective_settings


def _effective(
    runtime: Runtime, client: TestClient, project_model: dict[str, Any], round_model: Any
) -> dict[str, Any]:
    project = labeled_project(client, class_names=["polyp"], model_settings=project_model)
    body = {} if round_model is None else {"model": round_model}
    started = client.post(f"/api/v1/projects/{project['id']}/rounds", json=body)
    assert started.status_code == 201, started.text
    with runtime.session_factory() as session:
        stored = session.get(Project, project["id"])
        assert stored is not None
        return _effective_settings(runtime, stored, started.json()["settings"])


def test_a_round_that_says_nothing_trains_under_auto_with_peer_maps_and_the_mix_rule(
    runtime: Runtime, client: TestClient
) -> None:
    effective = _effective(runtime, client, {}, None)
    model = ModelConfig.from_dict(effective["model"])
    assert model.machine_augment == "auto"
    assert model.mix_human_share == 0.5
    assert model.human_share == 0.0
    assert effective["peer_maps"] is True
    # the library's own defaults stay plain: an experiment's command keeps its meaning
    assert ModelConfig().machine_augment == "same"
    assert ModelConfig().mix_human_share == 0.0


@pytest.mark.parametrize(
    ("project_model", "round_model", "augment", "mix", "share", "peer_maps"),
    [
        ({"machine_augment": "same"}, None, "same", 0.5, 0.0, False),
        ({}, {"machine_augment": "strong_all"}, "strong_all", 0.5, 0.0, False),
        ({"mix_human_share": 0.0}, None, "auto", 0.0, 0.0, True),
        ({}, {"mix_human_share": 0.25}, "auto", 0.25, 0.0, True),
        # a share fixed another way replaces the rule rather than clashing with it
        ({"human_share": 0.5}, None, "auto", 0.0, 0.5, True),
        ({}, {"keep_empty_share": True}, "auto", 0.0, 0.0, True),
        # a round that sets the project's share back to 0 gets the rule again
        ({"human_share": 0.5}, {"human_share": 0.0}, "auto", 0.5, 0.0, True),
    ],
)
def test_what_a_project_or_round_gives_wins_over_the_defaults(
    runtime: Runtime,
    client: TestClient,
    project_model: dict[str, Any],
    round_model: dict[str, Any] | None,
    augment: str,
    mix: float,
    share: float,
    peer_maps: bool,
) -> None:
    effective = _effective(runtime, client, project_model, round_model)
    model = ModelConfig.from_dict(effective["model"])
    assert (model.machine_augment, model.mix_human_share, model.human_share) == (
        augment,
        mix,
        share,
    )
    assert effective["peer_maps"] is peer_maps


def test_an_explicit_clash_is_still_refused(client: TestClient) -> None:
    # the defaults give way to a share set another way; a rule asked for beside it does not
    response = client.post(
        "/api/v1/projects",
        json={"name": "p", "model_settings": {"mix_human_share": 0.5, "human_share": 0.5}},
    )
    assert response.status_code == 422, response.text
    assert "mix_human_share" in response.json()["error"]["message"]
