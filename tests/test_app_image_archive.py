"""Archiving an image: out of listings, counts, rounds, the review queue and exports, taking
no labels and no decisions, with every version kept; restoring puts it back as it was."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.models import Project, Role
from app.runtime import Runtime
from tests.accounts import bearer, make_user
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import create_project, png_bytes, real_image, upload
from workers.rounds.data import current_labels, unlabeled_image_ids

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_an_archived_image_is_out_of_use_until_restored(
    client: TestClient, runtime: Runtime
) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    base = f"/api/v1/projects/{project_id}"
    pairs = [real_image("kvasir_seg", 80 + i) for i in range(3)]
    labelled, pending, unlabelled = (
        int(upload(client, project_id, path)["image"]["id"])  # type: ignore[index]
        for path, _ in pairs
    )
    mask = pairs[0][1].read_bytes()
    assert client.post(
        f"{base}/images/{labelled}/labels", files={"file": ("m.png", mask)}
    ).is_success
    made = make_round_with_candidates(
        runtime, project_id, [pending], [0.9], [truth_mask(pairs[1][1])]
    )

    archived = client.post(f"{base}/images/{labelled}/archive", json={"reason": "wrong patient"})
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_by"] == "root" and archived.json()["archived_at"]
    again = client.post(f"{base}/images/{labelled}/archive", json={"reason": "twice"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "image_archived"
    client.post(f"{base}/images/{pending}/archive", json={"reason": "duplicate"})

    listed = [i["id"] for i in client.get(f"{base}/images").json()["data"]]
    assert listed == [unlabelled]
    shelf = client.get(f"{base}/images", params={"archived": "true"}).json()["data"]
    assert [i["id"] for i in shelf] == [labelled, pending]
    assert shelf[0]["archive_reason"] == "wrong patient" and shelf[0]["label_version"] == 1
    status = client.get(f"{base}/status").json()
    assert (status["images"], status["labeled"], status["pending_candidates"]) == (1, 0, 0)
    assert client.get(f"{base}/review-queue").json()["data"] == []
    decided = client.post(f"{base}/candidates/{made.candidate_ids[0]}/accept")
    assert decided.status_code == 409 and decided.json()["error"]["code"] == "image_archived"
    other = png_bytes(np.zeros_like(truth_mask(pairs[0][1])))
    refused = client.post(f"{base}/images/{labelled}/labels", files={"file": ("m.png", other)})
    assert refused.status_code == 409 and "archived" in refused.json()["error"]["message"]
    exported = client.get(f"{base}/export", params={"format": "masks"}).content
    assert zipfile.ZipFile(io.BytesIO(exported)).namelist() == ["manifest.csv"]
    with session_scope(runtime.session_factory) as session:
        project = session.get(Project, project_id)
        assert project is not None
        assert current_labels(session, project) == []  # a round trains on none of them
        assert unlabeled_image_ids(session, project) == [unlabelled]
    # The same file uploaded again is the archived image, and says so.
    same = upload(client, project_id, pairs[0][0])
    assert same["created"] is False and same["image"]["archived_at"]  # type: ignore[index]

    restored = client.post(f"{base}/images/{labelled}/restore")
    assert restored.status_code == 200 and restored.json()["archived_at"] is None
    assert client.post(f"{base}/images/{labelled}/restore").status_code == 409
    assert client.get(f"{base}/images/{labelled}/labels/current").json()["version"] == 1
    assert client.get(f"{base}/status").json()["labeled"] == 1
    client.post(f"{base}/images/{pending}/restore")
    assert [c["id"] for c in client.get(f"{base}/review-queue").json()["data"]] == (
        made.candidate_ids
    )
    actions = [e["action"] for e in client.get(f"{base}/audit").json()["data"]]
    assert actions.count("image.archive") == 2 and actions.count("image.restore") == 2


def test_only_project_admins_archive_and_a_reason_is_required(
    client: TestClient, runtime: Runtime
) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image_id = int(upload(client, project_id, real_image("kvasir_seg", 83)[0])["image"]["id"])  # type: ignore[index]
    url = f"/api/v1/projects/{project_id}/images/{image_id}/archive"
    _, annotator = make_user(runtime, "anna", roles={project_id: Role.ANNOTATOR})
    assert client.post(url, json={"reason": "x"}, headers=bearer(annotator)).status_code == 403
    assert client.post(url, json={"reason": ""}).status_code == 422
    assert client.post(url, json={}).status_code == 422
    assert client.get(f"/api/v1/projects/{project_id}/images").json()["count"] == 1


def test_bulk_accept_passes_over_archived_images_and_their_decisions_stay(
    client: TestClient, runtime: Runtime
) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    base = f"/api/v1/projects/{project_id}"
    pairs = [real_image("kvasir_seg", 84 + i) for i in range(3)]
    ids = [int(upload(client, project_id, path)["image"]["id"]) for path, _ in pairs]  # type: ignore[index]
    made = make_round_with_candidates(
        runtime, project_id, ids, [0.9, 0.8, 0.7], [truth_mask(mask) for _, mask in pairs]
    )
    decided = made.candidate_ids[2]
    assert client.post(f"{base}/candidates/{decided}/accept").status_code == 200
    for image_id in (ids[0], ids[2]):
        archived = client.post(f"{base}/images/{image_id}/archive", json={"reason": "mix-up"})
        assert archived.status_code == 200
    bulk = client.post(f"{base}/review-queue/accept-above", json={"threshold": 0.5})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["accepted"] == 1  # the one image in use
    undo = client.post(f"{base}/candidates/{decided}/undo")
    assert undo.status_code == 409 and undo.json()["error"]["code"] == "image_archived"
    assert client.get(f"{base}/images/{ids[2]}/labels/current").json()["source"] == "machine"
