"""Undoing a review decision: the candidate is pending again, and the label version an accept
or edit made is retracted (kept in the history, no longer the image's label). Only the
decider or a project admin, only while that version is the image's label. On SQLite and
PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.models import Candidate, Project, Role
from app.runtime import Runtime
from app.services.labels import supersede_pending
from tests.accounts import bearer, make_user
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import create_project, png_bytes, real_image, state_snapshot, upload
from workers.rounds.data import current_labels, unlabeled_image_ids


def _reviewed(
    client: TestClient, runtime: Runtime
) -> tuple[int, list[int], list[int], list[np.ndarray]]:
    """A project with two images and a finished round's candidate for each."""
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image_ids, masks = [], []
    for index in range(2):
        image_path, mask_path = real_image("kvasir_seg", 30 + index)
        image_ids.append(int(upload(client, project_id, image_path)["image"]["id"]))  # type: ignore[index]
        masks.append(truth_mask(mask_path))
    made = make_round_with_candidates(runtime, project_id, image_ids, [0.9, 0.8], masks)
    return project_id, image_ids, made.candidate_ids, masks


def _pool(runtime: Runtime, project_id: int) -> tuple[list[int], list[int]]:
    """(images a round would train on, images it would propose for)."""
    with runtime.session_factory() as session:
        project = session.get(Project, project_id)
        assert project is not None
        trained = [label.image_id for label in current_labels(session, project)]
        return trained, unlabeled_image_ids(session, project)


@pytest.mark.parametrize("decision", ["accept", "edit"])
def test_an_undone_label_decision_retracts_its_version(
    client: TestClient, runtime: Runtime, decision: str
) -> None:
    project_id, image_ids, candidate_ids, masks = _reviewed(client, runtime)
    base = f"/api/v1/projects/{project_id}"
    first = f"{base}/candidates/{candidate_ids[0]}"
    kwargs = {"files": {"file": ("m.png", png_bytes(1 - masks[0]))}} if decision == "edit" else {}
    assert client.post(f"{first}/{decision}", **kwargs).status_code == 200  # type: ignore[arg-type]
    assert _pool(runtime, project_id) == ([image_ids[0]], [image_ids[1]])
    undone = client.post(f"{first}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "pending" and undone.json()["decided_by"] is None
    assert undone.json()["edit_dice"] is None
    labels = f"{base}/images/{image_ids[0]}/labels"
    assert client.get(f"{labels}/current").status_code == 404
    history = client.get(labels).json()
    assert len(history) == 1 and history[0]["retracted_by"] == "root"
    assert history[0]["retracted_at"] is not None
    assert _pool(runtime, project_id) == ([], image_ids)  # neither trained on nor left out
    assert client.get(f"{base}/review-queue").json()["count"] == 2
    assert client.get(f"{base}/status").json()["labeled"] == 0
    export = client.get(f"{base}/export", params={"format": "coco"}).json()
    assert export["annotations"] == []
    # decided again: a new version number, the retracted one stays as it was
    again = client.post(f"{first}/accept")
    assert again.status_code == 200 and again.json()["version"] == 2
    assert [label["retracted_at"] is None for label in client.get(labels).json()] == [False, True]


def test_an_undone_rejection_is_pending_again(client: TestClient, runtime: Runtime) -> None:
    project_id, _, candidate_ids, _ = _reviewed(client, runtime)
    first = f"/api/v1/projects/{project_id}/candidates/{candidate_ids[0]}"
    assert client.post(f"{first}/reject", json={"reason": "wrong organ"}).status_code == 200
    before = state_snapshot(runtime)
    undone = client.post(f"{first}/undo").json()
    assert (undone["status"], undone["reason"]) == ("pending", None)
    assert state_snapshot(runtime) == before  # no label was involved
    trail = client.get(f"/api/v1/projects/{project_id}/audit").json()["data"]
    assert trail[0]["action"] == "candidate.undo" and trail[0]["details"]["undone"] == "rejected"


def test_who_may_undo_and_what_cannot_be(client: TestClient, runtime: Runtime) -> None:
    project_id, image_ids, candidate_ids, _ = _reviewed(client, runtime)
    base = f"/api/v1/projects/{project_id}"
    _, rex = make_user(runtime, "rex", roles={project_id: Role.REVIEWER})
    _, ada = make_user(runtime, "ada", roles={project_id: Role.ADMIN})
    first, second = (f"{base}/candidates/{c}" for c in candidate_ids)
    assert client.post(f"{first}/undo").status_code == 409  # pending: nothing to undo
    assert client.post(f"{first}/accept").status_code == 200
    before = state_snapshot(runtime)
    other = client.post(f"{first}/undo", headers=bearer(rex))
    assert other.status_code == 403 and "only they or a project admin" in other.text
    assert state_snapshot(runtime) == before
    assert client.post(f"{first}/undo", headers=bearer(ada)).status_code == 200
    # a human label on top of an accepted one: the accept's version is no longer the label
    assert client.post(f"{second}/accept").status_code == 200
    labels = f"{base}/images/{image_ids[1]}/labels"
    image = client.get(f"{base}/images/{image_ids[1]}").json()
    human = png_bytes(np.zeros((image["height"], image["width"]), dtype=np.uint8))
    assert client.post(labels, files={"file": ("h.png", human)}).status_code == 201
    before = state_snapshot(runtime)
    late = client.post(f"{second}/undo")
    assert late.status_code == 409 and "label is now version 2" in late.text
    assert state_snapshot(runtime) == before


def test_a_retried_upload_after_an_undo_adds_nothing(client: TestClient, runtime: Runtime) -> None:
    """Version numbers skip a retracted version; a retry is still told from a stale upload."""
    project_id, image_ids, candidate_ids, masks = _reviewed(client, runtime)
    base = f"/api/v1/projects/{project_id}"
    assert client.post(f"{base}/candidates/{candidate_ids[0]}/accept").status_code == 200
    assert client.post(f"{base}/candidates/{candidate_ids[0]}/undo").status_code == 200
    labels = f"{base}/images/{image_ids[0]}/labels"
    form = {"expected_version": "0"}  # no label was current when it was made
    first = client.post(labels, files={"file": ("m.png", png_bytes(masks[0]))}, data=form)
    assert first.status_code == 201 and first.json()["version"] == 2
    again = client.post(labels, files={"file": ("m.png", png_bytes(masks[0]))}, data=form)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_an_undone_rejection_does_not_reopen_a_labelled_image(
    client: TestClient, runtime: Runtime
) -> None:
    project_id, image_ids, candidate_ids, masks = _reviewed(client, runtime)
    base = f"/api/v1/projects/{project_id}"
    first = f"{base}/candidates/{candidate_ids[0]}"
    assert client.post(f"{first}/reject", json={"reason": "wrong"}).status_code == 200
    labels = f"{base}/images/{image_ids[0]}/labels"
    assert client.post(labels, files={"file": ("h.png", png_bytes(masks[0]))}).status_code == 201
    before = state_snapshot(runtime)
    refused = client.post(f"{first}/undo")
    assert refused.status_code == 409 and "has label version 1 since" in refused.text
    assert state_snapshot(runtime) == before
    assert client.get(f"{first}").json()["status"] == "rejected"


def test_only_the_images_newest_candidate_is_undone(client: TestClient, runtime: Runtime) -> None:
    """An older round's rejection stays: undoing it would give the image two candidates."""
    project_id, image_ids, candidate_ids, masks = _reviewed(client, runtime)
    base = f"/api/v1/projects/{project_id}"
    assert client.post(
        f"{base}/candidates/{candidate_ids[0]}/reject", json={"reason": "x"}
    ).is_success
    newer = make_round_with_candidates(runtime, project_id, image_ids[:1], [0.7], masks[:1], 2)
    refused = client.post(f"{base}/candidates/{candidate_ids[0]}/undo")
    assert refused.status_code == 409
    assert f"has a newer candidate ({newer.candidate_ids[0]})" in refused.text
    queue = client.get(f"{base}/review-queue").json()["data"]
    assert [c["image_id"] for c in queue].count(image_ids[0]) == 1


def test_a_newer_candidate_superseded_by_the_decision_does_not_block_its_undo(
    client: TestClient, runtime: Runtime
) -> None:
    """Accepted while the next round ran: that round's candidate for the image was superseded
    by the accept's label, is never reviewed, and leaves the accept undoable."""
    project_id, image_ids, candidate_ids, masks = _reviewed(client, runtime)
    base = f"/api/v1/projects/{project_id}"
    assert client.post(f"{base}/candidates/{candidate_ids[0]}/accept").is_success
    newer = make_round_with_candidates(runtime, project_id, image_ids[:1], [0.7], masks[:1], 2)
    with runtime.session_factory() as session:  # as the round's ranking does
        supersede_pending(
            session, Candidate.id == newer.candidate_ids[0], reason="labelled during the round"
        )
        session.commit()
    undone = client.post(f"{base}/candidates/{candidate_ids[0]}/undo")
    assert undone.status_code == 200, undone.text
    queue = client.get(f"{base}/review-queue").json()["data"]
    assert [c["id"] for c in queue if c["image_id"] == image_ids[0]] == [candidate_ids[0]]


def test_a_human_upload_of_an_edited_label_confirms_it(
    client: TestClient, runtime: Runtime
) -> None:
    """A human's copy of a review decision's label outlives an undo of that decision."""
    project_id, image_ids, candidate_ids, masks = _reviewed(client, runtime)
    base = f"/api/v1/projects/{project_id}"
    edited = (1 - masks[0]).astype(np.uint8)
    edit = client.post(
        f"{base}/candidates/{candidate_ids[0]}/edit", files={"file": ("e.png", png_bytes(edited))}
    )
    assert edit.status_code == 200
    labels = f"{base}/images/{image_ids[0]}/labels"
    confirmed = client.post(labels, files={"file": ("e.png", png_bytes(edited))})
    assert confirmed.status_code == 201 and confirmed.json()["source"] == "human"
    # and the decision can no longer be undone from under the human version
    assert client.post(f"{base}/candidates/{candidate_ids[0]}/undo").status_code == 409
    assert client.get(f"{labels}/current").json()["version"] == 2
