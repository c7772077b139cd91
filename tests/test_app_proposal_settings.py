"""Proposal settings are checked where a client gives them (a project, a round): an unknown
source or setting, a value out of range, a SAM source on a server without a checkpoint, or a
setting only the server may choose (a file path) is a 422 that creates nothing. A SAM source,
reference or fast, runs the server's checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.models import Image, Project, Round
from app.runtime import Runtime
from tests.test_app_round_requests import label_an_image
from tests.tiny_sam import save_tiny_sam
from tests.uploads import create_project, real_image, upload
from workers.rounds.proposals import proposal_settings, proposal_source, proposals_for


def _count(runtime: Runtime, model: type[Project] | type[Round]) -> int:
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _configure_tiny_sam(runtime: Runtime, tmp_path: Path) -> Path:
    weights = save_tiny_sam(tmp_path / "sam_vit_tiny.pth", logit_scale=30.0)
    runtime.settings.sam_checkpoint = weights
    runtime.settings.sam_model = "vit_tiny"
    return weights


BAD_WITHOUT_SAM: list[tuple[dict[str, Any], str]] = [
    ({"source": "sam2"}, "unknown proposal source 'sam2'"),
    ({"source": 3}, "must be a name"),
    ({"source": "offline", "max_proposal": 50}, "max_proposal"),
    ({"source": "offline", "min_area": "small"}, "must be numbers"),
    ({"source": "sam"}, "none is configured on this server"),
    ({"source": "sam_fast"}, "none is configured on this server"),
    ({"source": "offline", "checkpoint": "/etc/passwd"}, "the server's to set"),
    ({"model_type": "vit_h"}, "the server's to set"),
]


@pytest.mark.parametrize(("proposals", "message"), BAD_WITHOUT_SAM)
def test_a_project_with_proposal_settings_it_cannot_run_is_422_and_not_created(
    runtime: Runtime, client: TestClient, proposals: dict[str, Any], message: str
) -> None:
    response = client.post(
        "/api/v1/projects", json={"name": "polyps", "proposal_settings": proposals}
    )
    assert response.status_code == 422, response.text
    assert message in response.text
    assert _count(runtime, Project) == 0


BAD_WITH_SAM: list[tuple[dict[str, Any], str]] = [
    ({"source": "sam", "pred_iou_thresh": 1.5}, "pred_iou_thresh must lie in [0, 1]"),
    ({"source": "sam_fast", "points_per_side": 0}, "points_per_side must be an integer >= 1"),
    ({"source": "sam_fast", "precision": "fp8"}, "unknown precision 'fp8'"),
    ({"source": "sam", "precision": "bf16"}, "unknown setting(s) ['precision']"),
    ({"source": "sam_fast", "embedding_cache": "/tmp/x"}, "the server's to set"),
    # JSON that the range checks alone would let through, and the reference generator refuse
    ({"source": "sam", "pred_iou_thresh": "0.5"}, "pred_iou_thresh must be a number"),
    ({"source": "sam", "points_per_batch": None}, "points_per_batch must be an integer"),
    ({"source": "sam_fast", "points_per_side": True}, "points_per_side must be an integer"),
    ({"source": "sam", "crop_n_layers": 1.5}, "crop_n_layers must be an integer"),
]


@pytest.mark.parametrize(("proposals", "message"), BAD_WITH_SAM)
def test_a_round_with_bad_sam_settings_is_422_and_starts_nothing(
    runtime: Runtime,
    client: TestClient,
    tmp_path: Path,
    proposals: dict[str, Any],
    message: str,
) -> None:
    _configure_tiny_sam(runtime, tmp_path)
    project = create_project(client, class_names=["polyp"])
    response = client.post(
        f"/api/v1/projects/{project['id']}/rounds", json={"proposals": proposals}
    )
    assert response.status_code == 422, response.text
    assert message in response.text
    assert _count(runtime, Round) == 0


def test_a_round_over_a_projects_sam_source_is_refused_once_the_checkpoint_is_gone(
    runtime: Runtime, client: TestClient, tmp_path: Path
) -> None:
    _configure_tiny_sam(runtime, tmp_path)
    project = create_project(
        client, class_names=["polyp"], proposal_settings={"source": "sam", "points_per_side": 4}
    )
    label_an_image(client, project["id"])
    runtime.settings.sam_checkpoint = None  # the server restarted without one
    response = client.post(f"/api/v1/projects/{project['id']}/rounds", json={})
    assert response.status_code == 422 and "none is configured" in response.text
    assert _count(runtime, Round) == 0
    # a round may choose the offline source instead: the project's SAM settings do not follow
    offline = {"proposals": {"source": "offline"}}
    started = client.post(f"/api/v1/projects/{project['id']}/rounds", json=offline)
    assert started.status_code == 201, started.text
    with runtime.session_factory() as session:
        stored = session.get(Project, project["id"])
        assert stored is not None
        assert proposal_settings(runtime, stored, offline["proposals"]) == {"source": "offline"}


@pytest.mark.parametrize("source", ["sam", "sam_fast"])
def test_a_sam_source_runs_the_servers_checkpoint(
    runtime: Runtime, client: TestClient, tmp_path: Path, source: str
) -> None:
    weights = _configure_tiny_sam(runtime, tmp_path)
    project = create_project(
        client,
        class_names=["polyp"],
        proposal_settings={"source": source, "points_per_side": 4},
    )
    upload(client, project["id"], real_image("kvasir_seg", 0)[0])
    with runtime.session_factory() as session:
        stored = session.get(Project, project["id"])
        image = session.scalars(select(Image)).one()
        session.expunge_all()
    assert stored is not None
    settings = proposal_settings(runtime, stored, {})
    assert settings["checkpoint"] == str(weights) and settings["model_type"] == "vit_tiny"
    proposals = proposals_for(runtime, image, settings)
    assert proposals.source == source
    assert proposals.masks.shape[1:] == (image.height, image.width)


def _stored_project(
    runtime: Runtime, client: TestClient, stored: dict[str, Any], name: str = "polyps"
) -> Project:
    """A project whose stored proposal settings are ``stored``, as a project created before
    some of them were refused may hold."""
    created = create_project(client, name, class_names=["polyp"])
    label_an_image(client, created["id"])
    with runtime.session_factory() as session:
        project = session.get(Project, created["id"])
        assert project is not None
        project.proposal_settings = stored
        session.commit()
        session.expunge(project)
    return project


def test_paths_stored_in_an_older_project_are_never_used(
    runtime: Runtime, client: TestClient, tmp_path: Path
) -> None:
    weights = _configure_tiny_sam(runtime, tmp_path)
    older = {"source": "sam", "checkpoint": "/elsewhere.pth", "model_type": "vit_h"}
    project = _stored_project(runtime, client, {**older, "device": "cuda:3"})
    assert client.post(f"/api/v1/projects/{project.id}/rounds", json={}).status_code == 201
    resolved = proposal_settings(runtime, project, {})
    assert resolved == {
        "source": "sam",
        "checkpoint": str(weights),
        "model_type": "vit_tiny",
        "device": "auto",
    }
    stored = {"source": "offline", "checkpoint": "/x.pth"}
    offline = _stored_project(runtime, client, stored, name="older offline")
    settings = proposal_settings(runtime, offline, {})
    assert settings == {"source": "offline"} and proposal_source(settings).name == "offline"


def test_a_round_naming_the_projects_own_source_keeps_its_settings(
    runtime: Runtime, client: TestClient, tmp_path: Path
) -> None:
    _configure_tiny_sam(runtime, tmp_path)
    project = _stored_project(runtime, client, {"points_per_side": 16})  # the default: sam
    resolved = proposal_settings(runtime, project, {"source": "sam", "box_nms_thresh": 0.7})
    assert resolved["points_per_side"] == 16 and resolved["box_nms_thresh"] == 0.7
    assert proposal_settings(runtime, project, {"source": "sam_fast"})["source"] == "sam_fast"
    assert "points_per_side" not in proposal_settings(runtime, project, {"source": "offline"})


def test_offline_settings_given_as_json_lists_build_a_source(
    runtime: Runtime, client: TestClient
) -> None:
    given = {"source": "offline", "superpixel_counts": [100, 400]}
    project = create_project(client, class_names=["polyp"], proposal_settings=given)
    with runtime.session_factory() as session:
        stored = session.get(Project, project["id"])
        assert stored is not None
        source = proposal_source(proposal_settings(runtime, stored, {}))
    assert source.name == "offline" and "400" in source.settings_key()
