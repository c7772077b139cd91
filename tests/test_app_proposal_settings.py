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
from samdsk.errors import ConfigError
from samdsk.proposals.offline import OfflineProposalSource
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
    # well formed, but more than a worker can afford per image
    ({"source": "sam_fast", "points_per_side": 129}, "points_per_side must be at most 128"),
    ({"source": "sam", "points_per_batch": 10**6}, "points_per_batch must be at most 1024"),
    ({"source": "sam_fast", "crop_n_layers": 3}, "crop_n_layers must be at most 2"),
    ({"source": "sam_fast", "image_batch": 33}, "image_batch must be at most 32"),
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


# Well formed, but more than a worker would ever finish or hold, or no number at all (each was
# accepted, or a 500, before the limits).
OFFLINE_BEYOND_LIMITS: list[tuple[dict[str, Any], str]] = [
    ({"work_size": 2048}, "work_size must be at most 1024"),
    ({"work_size": 256.5}, "work_size must be an integer"),
    ({"work_size": "256"}, "work_size must be an integer"),
    ({"work_size": None}, "work_size must be an integer"),
    ({"max_proposals": 1001}, "max_proposals must be at most 1000"),
    ({"max_proposals": 300.0}, "max_proposals must be an integer"),
    ({"candidate_pool": 10**6}, "candidate_pool must be at most 2000"),
    ({"hull_sources": 10**6}, "hull_sources must be at most 1000"),
    ({"blur_sigma": 1e6}, "blur_sigma must be at most 16.0"),
    ({"blur_sigma": True}, "blur_sigma must be a finite number"),
    ({"graph_scale": 1e300}, "graph_scale must be at most 100000.0"),
    ({"min_contrast": 1e9}, "min_contrast must be at most 400.0"),
    ({"size_weight": 1e9}, "size_weight must be at most 1000.0"),
    ({"superpixel_counts": [400] * 9}, "must be a list of at most 8 numbers; got 9 entries"),
    ({"superpixel_counts": 400}, "superpixel_counts must be a list"),
    ({"superpixel_counts": [10_001]}, "superpixel_counts entry must be at most 10000"),
    ({"coarse_scales": [1e300]}, "coarse_scales entry must be at most 100000.0"),
    ({"coarse_scales": ["big"]}, "coarse_scales entry must be a finite number"),
]


@pytest.mark.parametrize(("proposals", "message"), OFFLINE_BEYOND_LIMITS)
def test_offline_settings_beyond_their_limits_are_422_and_create_nothing(
    runtime: Runtime, client: TestClient, proposals: dict[str, Any], message: str
) -> None:
    given = {"source": "offline", **proposals}
    response = client.post("/api/v1/projects", json={"name": "p", "proposal_settings": given})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert _count(runtime, Project) == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_offline_settings_are_422(
    runtime: Runtime, client: TestClient, number: str
) -> None:
    # JSON has no NaN, but Python's parser, which reads request bodies, takes it
    for setting in ('"blur_sigma": %s', '"coarse_scales": [%s]'):
        body = '{"name": "p", "proposal_settings": {"source": "offline", %s}}' % (setting % number)
        response = client.post(
            "/api/v1/projects", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert "must be a finite number" in response.json()["error"]["message"]
    assert _count(runtime, Project) == 0


def test_the_library_refuses_non_finite_offline_settings() -> None:
    for settings in ({"blur_sigma": float("nan")}, {"coarse_scales": [float("inf")]}):
        with pytest.raises(ConfigError, match="finite"):
            OfflineProposalSource(**settings)


# At the limits: each builds a source (nothing runs) and is kept.
AT_LIMITS: list[dict[str, Any]] = [
    {
        "source": "offline",
        "work_size": 1024,
        "max_proposals": 1000,
        "candidate_pool": 2000,
        "hull_sources": 1000,
        "blur_sigma": 16,
        "graph_scale": 100_000,
        "min_contrast": 400.0,
        "size_weight": 1000.0,
        "superpixel_counts": [10_000] * 8,
        "coarse_scales": [100_000.0] * 8,
    },
    {
        "source": "sam_fast",
        "points_per_side": 128,
        "points_per_batch": 1024,
        "crop_n_layers": 2,
        "image_batch": 32,
    },
    {"source": "sam_fast", "points_per_batch": None},
    {"source": "sam", "points_per_side": 32, "points_per_batch": 64, "crop_n_layers": 1},
]


@pytest.mark.parametrize("given", AT_LIMITS)
def test_settings_at_their_limits_are_kept(
    runtime: Runtime, client: TestClient, tmp_path: Path, given: dict[str, Any]
) -> None:
    _configure_tiny_sam(runtime, tmp_path)
    response = client.post("/api/v1/projects", json={"name": "p", "proposal_settings": given})
    assert response.status_code == 201, response.text
    assert response.json()["proposal_settings"] == given
