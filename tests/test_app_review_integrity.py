"""What review may not do to labels: a machine candidate accepted over a newer human label,
two candidates of one image both accepted, a round's candidates reviewed before the round
has ranked them, a cancelled round's candidates left pending. On SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.imaging import mask_to_png
from app.models import Candidate, CandidateStatus, Image, Round, RoundStatus
from app.runtime import Runtime
from app.services.review import mask_dice
from tests.review_world import MadeRound, make_round_with_candidates, truth_mask
from tests.uploads import create_project, png_bytes, real_image, state_snapshot, upload
from workers.rounds.matching import _like_a_rejected
from workers.rounds.pipeline import _close


def _project_with_images(client: TestClient, count: int) -> tuple[int, list[int], list[np.ndarray]]:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image_ids, masks = [], []
    for index in range(count):
        image_path, mask_path = real_image("kvasir_seg", 20 + index)
        image_ids.append(int(upload(client, project_id, image_path)["image"]["id"]))  # type: ignore[index]
        masks.append(truth_mask(mask_path))
    return project_id, image_ids, masks


def _candidate(runtime: Runtime, candidate_id: int) -> Candidate:
    with runtime.session_factory() as session:
        candidate = session.get(Candidate, candidate_id)
        assert candidate is not None
        session.expunge(candidate)
        return candidate


def _set_round_status(runtime: Runtime, made: MadeRound, status: RoundStatus) -> None:
    with session_scope(runtime.session_factory) as session:
        round_ = session.get(Round, made.round_id)
        assert round_ is not None
        round_.status = status


def test_a_human_label_supersedes_the_images_pending_candidate(
    client: TestClient, runtime: Runtime
) -> None:
    project_id, image_ids, masks = _project_with_images(client, 2)
    made = make_round_with_candidates(runtime, project_id, image_ids, [0.95, 0.9], masks)
    base = f"/api/v1/projects/{project_id}"
    human = np.zeros_like(masks[0])
    human[10:40, 10:40] = 1
    labels = f"{base}/images/{image_ids[0]}/labels"
    assert client.post(labels, files={"file": ("h.png", png_bytes(human))}).status_code == 201
    superseded = _candidate(runtime, made.candidate_ids[0])
    assert superseded.status is CandidateStatus.SUPERSEDED
    assert superseded.reason == f"image {image_ids[0]} got label version 1 (human, by root)"
    before = state_snapshot(runtime)
    late = client.post(f"{base}/candidates/{made.candidate_ids[0]}/accept")
    assert late.status_code == 409
    assert late.json()["error"]["message"] == (
        f"candidate {made.candidate_ids[0]} was superseded: {superseded.reason}"
    )
    bulk = client.post(f"{base}/review-queue/accept-above", json={"threshold": 0.5})
    assert bulk.status_code == 200 and bulk.json()["accepted"] == 1  # the other image only
    assert state_snapshot(runtime)[1] == before[1] + 1
    current = client.get(f"{labels}/current").json()
    assert (current["version"], current["source"]) == (1, "human")
    queue = client.get(f"{base}/review-queue").json()
    assert queue["count"] == 0


def test_accepting_one_candidate_closes_the_images_other_ones(
    client: TestClient, runtime: Runtime
) -> None:
    project_id, image_ids, masks = _project_with_images(client, 1)
    first = make_round_with_candidates(runtime, project_id, image_ids, [0.8], masks)
    second = make_round_with_candidates(runtime, project_id, image_ids, [0.9], masks, number=2)
    base = f"/api/v1/projects/{project_id}"
    accepted = client.post(f"{base}/candidates/{second.candidate_ids[0]}/accept")
    assert accepted.status_code == 200, accepted.text
    older = client.post(f"{base}/candidates/{first.candidate_ids[0]}/accept")
    assert older.status_code == 409 and "got label version 1 (machine" in older.text
    labels = client.get(f"{base}/images/{image_ids[0]}/labels").json()
    assert [label["candidate_id"] for label in labels] == [second.candidate_ids[0]]


@pytest.mark.parametrize("status", [RoundStatus.RUNNING, RoundStatus.QUEUED])
def test_a_running_rounds_candidates_are_not_for_review_yet(
    client: TestClient, runtime: Runtime, status: RoundStatus
) -> None:
    project_id, image_ids, masks = _project_with_images(client, 2)
    made = make_round_with_candidates(runtime, project_id, image_ids, [0.95, 0.9], masks)
    _set_round_status(runtime, made, status)
    base = f"/api/v1/projects/{project_id}"
    assert client.get(f"{base}/review-queue").json()["count"] == 0
    assert client.get(f"{base}/status").json()["pending_candidates"] == 0
    images = client.get(f"{base}/images").json()["data"]
    assert not any(image["pending_review"] for image in images)
    before = state_snapshot(runtime)
    for action, kwargs in (
        ("accept", {}),
        ("reject", {"json": {"reason": "no"}}),
        ("edit", {"files": {"file": ("m.png", png_bytes(masks[0]))}}),
    ):
        refused = client.post(f"{base}/candidates/{made.candidate_ids[0]}/{action}", **kwargs)  # type: ignore[arg-type]
        assert refused.status_code == 409, (action, refused.text)
        assert f"which is {status.value}" in refused.json()["error"]["message"]
    bulk = client.post(f"{base}/review-queue/accept-above", json={"threshold": 0.0})
    assert bulk.json()["accepted"] == 0
    assert state_snapshot(runtime) == before
    _set_round_status(runtime, made, RoundStatus.SUCCEEDED)
    assert client.get(f"{base}/review-queue").json()["count"] == 2


@pytest.mark.parametrize("status", [RoundStatus.CANCELLED, RoundStatus.FAILED])
def test_a_round_that_does_not_finish_withdraws_its_candidates(
    client: TestClient, runtime: Runtime, status: RoundStatus
) -> None:
    project_id, image_ids, masks = _project_with_images(client, 2)
    made = make_round_with_candidates(runtime, project_id, image_ids, [0.95, 0.9], masks)
    _set_round_status(runtime, made, RoundStatus.RUNNING)
    client.post(
        f"/api/v1/projects/{project_id}/candidates/{made.candidate_ids[1]}/reject",
        json={"reason": "x"},
    )  # 409 while running: both stay pending
    _close(runtime, made.round_id, status)
    for candidate_id in made.candidate_ids:
        candidate = _candidate(runtime, candidate_id)
        assert candidate.status is CandidateStatus.SUPERSEDED
        assert candidate.reason == f"round 1 was {status.value}"


def test_a_rejected_mask_drawn_again_a_few_pixels_apart_is_not_proposed(
    client: TestClient, runtime: Runtime
) -> None:
    _, image_ids, masks = _project_with_images(client, 1)
    rejected = masks[0]
    key = runtime.storage.put_content(mask_to_png(rejected), suffix=".png")
    with runtime.session_factory() as session:
        image = session.get(Image, image_ids[0])
        assert image is not None
    nearly = rejected.copy()
    rows = np.flatnonzero(rejected.any(axis=1))
    nearly[rows[0] : rows[0] + 2] = 0  # the region's top two rows trimmed
    assert 0.95 <= mask_dice(rejected, nearly) < 1.0
    other = np.zeros_like(rejected)
    other[: rejected.shape[0] // 3, : rejected.shape[1] // 3] = 1
    assert _like_a_rejected(runtime, image, rejected, [key], 1)
    assert _like_a_rejected(runtime, image, nearly, [key], 1)
    assert not _like_a_rejected(runtime, image, other, [key], 1)
    assert not _like_a_rejected(runtime, image, rejected, [], 1)
