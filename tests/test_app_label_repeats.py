"""A human mask upload that repeats the current human label adds no version (200, not 201):
repeats and retries whose 201 was lost leave the history as it was. Confirming a machine
label, or another author's stale upload, still counts. On SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial

from fastapi.testclient import TestClient
from httpx import Response

from app.models import Role
from app.runtime import Runtime
from tests.accounts import bearer, make_user
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import create_project, png_bytes, real_image, state_snapshot, upload

SENDERS = 4


def _labeled_image(client: TestClient) -> tuple[int, int, str, bytes]:
    """A project with one image and its first label; (project id, image id, labels URL, mask)."""
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image_path, mask_path = real_image("kvasir_seg", 3)
    image_id = int(upload(client, project_id, image_path)["image"]["id"])  # type: ignore[index]
    base = f"/api/v1/projects/{project_id}/images/{image_id}/labels"
    mask = mask_path.read_bytes()
    assert client.post(base, files={"file": ("m.png", mask)}).status_code == 201
    return project_id, image_id, base, mask


def test_repeated_mask_returns_the_current_label(client: TestClient, runtime: Runtime) -> None:
    _, _, base, mask = _labeled_image(client)
    current = client.get(f"{base}/current").json()
    before = state_snapshot(runtime)
    for form in ({}, {"expected_version": "1"}, {"expected_version": "0"}):
        again = client.post(base, files={"file": ("same.png", mask)}, data=form)
        assert again.status_code == 200, (form, again.text)
        assert again.json() == current
    assert state_snapshot(runtime) == before
    assert [v["version"] for v in client.get(base).json()] == [1]


def test_repeat_counts_the_pixels_not_the_file(client: TestClient, runtime: Runtime) -> None:
    """The same classes saved as 0/1 instead of 0/255 are the same label."""
    _, _, base, mask = _labeled_image(client)
    before = state_snapshot(runtime)
    with_indices = png_bytes(truth_mask(real_image("kvasir_seg", 3)[1]))
    assert with_indices != mask
    again = client.post(base, files={"file": ("indices.png", with_indices)})
    assert again.status_code == 200 and again.json()["version"] == 1
    assert state_snapshot(runtime) == before


def test_a_changed_mask_is_a_new_version(client: TestClient) -> None:
    _, _, base, mask = _labeled_image(client)
    edited = truth_mask(real_image("kvasir_seg", 3)[1])
    edited[:8, :8] = 1 - edited[:8, :8]
    created = client.post(base, files={"file": ("e.png", png_bytes(edited))})
    assert created.status_code == 201 and created.json()["version"] == 2
    back = client.post(base, files={"file": ("m.png", mask)}, data={"expected_version": "2"})
    assert back.status_code == 201 and back.json()["version"] == 3  # going back is a change


def test_another_authors_stale_upload_is_still_a_conflict(
    client: TestClient, runtime: Runtime
) -> None:
    """Only the author of the current version can be retrying the upload that made it."""
    project_id, _, base, mask = _labeled_image(client)
    _, token = make_user(runtime, "colleague", roles={project_id: Role.ANNOTATOR})
    before = state_snapshot(runtime)
    stale = client.post(
        base, files={"file": ("m.png", mask)}, data={"expected_version": "0"}, headers=bearer(token)
    )
    assert stale.status_code == 409, stale.text
    repeat = client.post(base, files={"file": ("m.png", mask)}, headers=bearer(token))
    assert repeat.status_code == 200 and repeat.json()["author"] == "root"
    assert state_snapshot(runtime) == before


def test_confirming_a_machine_label_adds_a_human_version(
    client: TestClient, runtime: Runtime
) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image_path, mask_path = real_image("kvasir_seg", 4)
    image_id = int(upload(client, project_id, image_path)["image"]["id"])  # type: ignore[index]
    mask = truth_mask(mask_path)
    made = make_round_with_candidates(runtime, project_id, [image_id], [0.9], [mask])
    accepted = client.post(
        f"/api/v1/projects/{project_id}/candidates/{made.candidate_ids[0]}/accept"
    )
    assert accepted.status_code == 200 and accepted.json()["source"] == "machine"
    base = f"/api/v1/projects/{project_id}/images/{image_id}/labels"
    confirmed = client.post(base, files={"file": ("m.png", png_bytes(mask))})
    assert confirmed.status_code == 201, confirmed.text
    assert (confirmed.json()["version"], confirmed.json()["source"]) == (2, "human")
    assert confirmed.json()["parent_id"] == accepted.json()["id"]


def _send(client: TestClient, url: str, mask: bytes, _: int) -> Response:
    return client.post(url, files={"file": ("m.png", mask)})


def test_identical_uploads_sent_at_once_make_one_version(client: TestClient) -> None:
    """A client that retries while its first request is still on its way: one 201, the rest
    200 with that label, and never a 409 (no version was named)."""
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    for index in (3, 4, 5):  # a race: several tries make a pass meaningful
        image_path, mask_path = real_image("kvasir_seg", index)
        image_id = int(upload(client, project_id, image_path)["image"]["id"])  # type: ignore[index]
        base = f"/api/v1/projects/{project_id}/images/{image_id}/labels"
        mask = mask_path.read_bytes()

        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            answers = list(pool.map(partial(_send, client, base, mask), range(SENDERS)))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [200] * (SENDERS - 1) + [201], [a.text for a in answers]
        assert {answer.json()["id"] for answer in answers} == {answers[0].json()["id"]}
        assert [v["version"] for v in client.get(base).json()] == [1]
