"""Reviewing candidates through the API: ranked queue, decisions with provenance, optimistic
concurrency, bulk accept, statistics. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import threading
from typing import NamedTuple

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from app.main import create_app
from app.models import Role
from app.runtime import Runtime
from tests.accounts import bearer, make_user
from tests.review_world import MadeRound, make_round_with_candidates, truth_mask
from tests.uploads import create_project, png_bytes, real_image, state_snapshot, upload

SCORES = [0.95, 0.72, 0.99, 0.4, 0.95]


class Reviewed(NamedTuple):
    project_id: int
    image_ids: list[int]
    made: MadeRound
    masks: list[np.ndarray]


@pytest.fixture
def reviewed(client: TestClient, runtime: Runtime) -> Reviewed:
    project = create_project(client, knowledge={"foreground": {"min_regions": 1, "max_regions": 3}})
    project_id = int(project["id"])  # type: ignore[call-overload]
    image_ids, masks = [], []
    for index in range(len(SCORES)):
        image_path, mask_path = real_image("kvasir_seg", 10 + index)
        image_ids.append(int(upload(client, project_id, image_path)["image"]["id"]))  # type: ignore[index]
        masks.append(truth_mask(mask_path))
    made = make_round_with_candidates(runtime, project_id, image_ids, SCORES, masks)
    return Reviewed(project_id, image_ids, made, masks)


def test_queue_ranked_filtered_and_paged(client: TestClient, reviewed: Reviewed) -> None:
    project_id = reviewed.project_id
    url = f"/api/v1/projects/{project_id}/review-queue"
    full = client.get(url).json()
    assert full["count"] == 5
    assert [c["score"] for c in full["data"]] == sorted(SCORES, reverse=True)
    tied = [c["id"] for c in full["data"] if c["score"] == 0.95]
    assert tied == sorted(tied)  # ties by id: a stable order
    first = client.get(url, params={"limit": 2}).json()
    second = client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get(url, params={"limit": 2, "cursor": second["next_cursor"]}).json()
    paged = [c["id"] for page in (first, second, third) for c in page["data"]]
    assert paged == [c["id"] for c in full["data"]] and third["next_cursor"] is None
    band = client.get(url, params={"min_score": 0.5, "max_score": 0.96}).json()
    assert sorted(c["score"] for c in band["data"]) == [0.72, 0.95, 0.95]
    assert client.get(url, params={"round": 2}).json()["count"] == 0
    item = full["data"][0]
    assert item["round_number"] == 1 and item["mask_url"].endswith("/mask")
    assert client.get(item["overlay_url"]).content.startswith(b"\x89PNG")
    assert client.get(url, params={"cursor": "garbage!"}).status_code == 422


def test_accept_reject_edit_with_provenance(client: TestClient, reviewed: Reviewed) -> None:
    project_id, image_ids, made, masks = reviewed
    base = f"/api/v1/projects/{project_id}"
    accepted = client.post(f"{base}/candidates/{made.candidate_ids[0]}/accept")
    assert accepted.status_code == 200, accepted.text
    label = accepted.json()
    assert label["source"] == "machine" and label["round_id"] == made.round_id
    assert label["round_number"] == 1  # the project's first round, whatever its row id
    assert label["candidate_id"] == made.candidate_ids[0] and label["author"] == "root"
    stored = client.get(f"{base}/images/{image_ids[0]}/labels/1/mask").content
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(stored))), masks[0])
    rejected = client.post(
        f"{base}/candidates/{made.candidate_ids[1]}/reject", json={"reason": "misses the stalk"}
    )
    assert (
        rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "misses the stalk"
    )
    assert client.get(f"{base}/images/{image_ids[1]}/labels").json() == []
    edited_mask = masks[2].copy()
    edited_mask[: edited_mask.shape[0] // 2] = 0
    edited = client.post(
        f"{base}/candidates/{made.candidate_ids[2]}/edit",
        files={"file": ("m.png", png_bytes(edited_mask))},
    )
    assert edited.status_code == 200 and edited.json()["source"] == "edited"
    candidate = client.get(f"{base}/candidates/{made.candidate_ids[2]}").json()
    expected = 2 * (masks[2] & edited_mask).sum() / (masks[2].sum() + edited_mask.sum())
    assert candidate["edit_dice"] == pytest.approx(expected)
    history = client.get(f"{base}/images/{image_ids[2]}/labels").json()
    assert history[-1]["edit_dice"] == pytest.approx(expected)  # on the label's side too
    stats = client.get(f"{base}/rounds/1/statistics").json()
    assert (stats["accepted"], stats["rejected"], stats["edited"], stats["pending"]) == (1, 1, 1, 2)
    assert stats["mean_edit_dice"] == pytest.approx(expected)
    actions = [e["action"] for e in client.get(f"{base}/audit").json()["data"]]
    assert actions[:3] == ["candidate.edit", "candidate.reject", "candidate.accept"]


def test_candidates_by_status_show_decisions_and_reasons(
    client: TestClient, runtime: Runtime, reviewed: Reviewed
) -> None:
    project_id, image_ids, made, masks = reviewed
    base = f"/api/v1/projects/{project_id}"
    for candidate_id, reason in zip(
        made.candidate_ids[:2], ["misses the stalk", "bubble"], strict=True
    ):
        rejected = client.post(f"{base}/candidates/{candidate_id}/reject", json={"reason": reason})
        assert rejected.status_code == 200
    assert client.post(f"{base}/candidates/{made.candidate_ids[2]}/accept").status_code == 200
    second = make_round_with_candidates(runtime, project_id, image_ids[3:4], [0.6], masks[3:4], 2)
    url = f"{base}/candidates"
    page = client.get(url, params={"status": "rejected"}).json()
    assert page["count"] == 2
    newest = page["data"][0]  # newest candidate first
    assert newest["id"] == made.candidate_ids[1] and newest["reason"] == "bubble"
    assert (newest["decided_by"], newest["score"], newest["round_number"]) == ("root", 0.72, 1)
    assert newest["decided_at"] is not None and newest["status"] == "rejected"
    accepted = client.get(url, params={"status": "accepted"}).json()["data"]
    assert [c["id"] for c in accepted] == [made.candidate_ids[2]] and accepted[0]["label_id"]
    assert client.get(url, params={"status": "pending", "round": 1}).json()["count"] == 2
    in_two = client.get(url, params={"round": 2}).json()
    assert [c["id"] for c in in_two["data"]] == second.candidate_ids
    everything = client.get(url).json()
    assert everything["count"] == len(SCORES) + 1
    paged = [
        c["id"]
        for offset in (0, 2, 4)
        for c in client.get(url, params={"offset": offset, "limit": 2}).json()["data"]
    ]
    assert paged == [c["id"] for c in everything["data"]] == sorted(paged, reverse=True)
    for bad in ({"status": "maybe"}, {"round": 0}, {"limit": 0}):
        response = client.get(url, params=bad)
        assert response.status_code == 422 and response.json()["error"]["message"], bad


def test_second_decision_is_conflict_and_changes_nothing(
    client: TestClient,
    runtime: Runtime,
    reviewed: Reviewed,
) -> None:
    project_id, _, made, _ = reviewed
    url = f"/api/v1/projects/{project_id}/candidates/{made.candidate_ids[0]}"
    label = client.post(f"{url}/accept").json()
    before = state_snapshot(runtime)
    again = client.post(f"{url}/reject", json={"reason": "too late"})
    assert again.status_code == 409 and "already decided" in again.json()["error"]["message"]
    assert again.json()["error"]["details"] == {
        "candidate_id": made.candidate_ids[0],
        "status": "accepted",
        "decided_by": "root",
        "label_id": label["id"],
    }
    _, other = make_user(runtime, "rev", roles={project_id: Role.REVIEWER})
    theirs = client.post(f"{url}/accept", headers=bearer(other))
    assert theirs.status_code == 409 and theirs.json()["error"]["details"]["decided_by"] == "root"
    assert state_snapshot(runtime) == before


def test_a_decision_sent_again_by_its_reviewer_answers_what_it_made(
    client: TestClient, runtime: Runtime, reviewed: Reviewed
) -> None:
    """A retry whose answer was lost: 200 with the label (accept, edit) or the candidate
    (reject), and nothing added; a different edit is still a conflict."""
    project_id, _, made, masks = reviewed
    base = f"/api/v1/projects/{project_id}/candidates"
    accepted = client.post(f"{base}/{made.candidate_ids[0]}/accept")
    edit = masks[1].copy()
    edit[:10, :10] = 1
    edited = client.post(
        f"{base}/{made.candidate_ids[1]}/edit", files={"file": ("e.png", png_bytes(edit))}
    )
    rejected = client.post(f"{base}/{made.candidate_ids[2]}/reject", json={"reason": "stalk"})
    assert [accepted.status_code, edited.status_code, rejected.status_code] == [200, 200, 200]
    before = state_snapshot(runtime)
    assert client.post(f"{base}/{made.candidate_ids[0]}/accept").json() == accepted.json()
    again = client.post(
        f"{base}/{made.candidate_ids[1]}/edit", files={"file": ("e.png", png_bytes(edit))}
    )
    assert again.status_code == 200 and again.json() == edited.json()
    twice = client.post(f"{base}/{made.candidate_ids[2]}/reject", json={"reason": "other"})
    assert twice.status_code == 200 and twice.json()["reason"] == "stalk"
    assert state_snapshot(runtime) == before
    edit[:20, :20] = 1
    changed = client.post(
        f"{base}/{made.candidate_ids[1]}/edit", files={"file": ("e.png", png_bytes(edit))}
    )
    assert changed.status_code == 409
    assert (
        client.post(f"{base}/{made.candidate_ids[0]}/reject", json={"reason": "x"}).status_code
        == 409
    )
    assert state_snapshot(runtime) == before


@pytest.mark.parametrize("database_url", ["postgres", "sqlite"], indirect=True)
def test_concurrent_decisions_exactly_one_wins(runtime: Runtime, reviewed: Reviewed) -> None:
    project_id, _, made, _ = reviewed
    tokens = [make_user(runtime, f"rev{i}", roles={project_id: Role.REVIEWER})[1] for i in range(2)]
    url = f"/api/v1/projects/{project_id}/candidates/{made.candidate_ids[3]}/accept"
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    app = create_app(runtime=runtime)
    clients = [TestClient(app, headers=bearer(token)) for token in tokens]

    def decide(client: TestClient) -> None:
        barrier.wait()
        statuses.append(client.post(url).status_code)

    threads = [threading.Thread(target=decide, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert sorted(statuses) == [200, 409]


def test_accept_above_is_one_transaction_and_idempotent(
    client: TestClient, reviewed: Reviewed
) -> None:
    project_id = reviewed.project_id
    url = f"/api/v1/projects/{project_id}/review-queue/accept-above"
    assert client.post(url, json={"threshold": 0.9}).json() == {"accepted": 3}
    assert client.post(url, json={"threshold": 0.9}).json() == {"accepted": 0}
    remaining = client.get(f"/api/v1/projects/{project_id}/review-queue").json()
    assert sorted(c["score"] for c in remaining["data"]) == [0.4, 0.72]
    status = client.get(f"/api/v1/projects/{project_id}/status").json()
    assert status["labeled"] == 3 and status["pending_candidates"] == 2


def test_accept_above_leaves_empty_annotations_to_a_reviewer(
    client: TestClient, runtime: Runtime
) -> None:
    project = create_project(client, knowledge={"foreground": {"min_regions": 0, "max_regions": 1}})
    project_id = int(project["id"])  # type: ignore[call-overload]
    image_ids, masks = [], []
    for index in range(2):
        image_path, mask_path = real_image("kvasir_seg", 20 + index)
        image_ids.append(int(upload(client, project_id, image_path)["image"]["id"]))  # type: ignore[index]
        masks.append(truth_mask(mask_path))
    masks[1] = np.zeros_like(masks[1])  # "nothing here", as sure as can be
    make_round_with_candidates(runtime, project_id, image_ids, [0.95, 0.99], masks)
    queue = f"/api/v1/projects/{project_id}/review-queue"
    assert [c["score"] for c in client.get(queue, params={"empty": True}).json()["data"]] == [0.99]
    assert [c["score"] for c in client.get(queue, params={"empty": False}).json()["data"]] == [0.95]
    url = f"/api/v1/projects/{project_id}/review-queue/accept-above"
    assert client.post(url, json={"threshold": 0.9}).json() == {"accepted": 1}
    left = client.get(f"/api/v1/projects/{project_id}/review-queue").json()["data"]
    assert [c["score"] for c in left] == [0.99]
    assert client.post(url, json={"threshold": 0.9, "include_empty": True}).json() == {
        "accepted": 1
    }
    assert client.get(f"/api/v1/projects/{project_id}/review-queue").json()["count"] == 0


def test_bad_ids_and_masks_are_4xx(
    client: TestClient, runtime: Runtime, reviewed: Reviewed
) -> None:
    project_id, _, made, masks = reviewed
    other = create_project(client, name="other")
    base = f"/api/v1/projects/{project_id}"
    before = state_snapshot(runtime)
    assert client.post(f"{base}/candidates/999999/accept").status_code == 404
    assert (
        client.post(
            f"/api/v1/projects/{other['id']}/candidates/{made.candidate_ids[0]}/accept"
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"{base}/candidates/{made.candidate_ids[0]}/reject", json={"reason": ""}
        ).status_code
        == 422
    )
    wrong = png_bytes(np.zeros((masks[0].shape[0] + 3, masks[0].shape[1]), dtype=np.uint8))
    assert (
        client.post(
            f"{base}/candidates/{made.candidate_ids[0]}/edit", files={"file": ("m.png", wrong)}
        ).status_code
        == 422
    )
    assert (
        client.post(f"{base}/review-queue/accept-above", json={"threshold": 1.5}).status_code == 422
    )
    assert client.get(f"{base}/rounds/7").status_code == 404
    assert state_snapshot(runtime) == before
    pending = client.get(f"{base}/review-queue").json()["count"]
    assert pending == len(SCORES)
