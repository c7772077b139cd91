"""Images and labels through the API with real data, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from app.runtime import Runtime
from tests.review_world import truth_mask
from tests.uploads import create_project, png_bytes, real_image, state_snapshot, upload


def test_upload_get_download_image(client: TestClient) -> None:
    project = create_project(client)
    path, _ = real_image("kvasir_seg", 0)
    body = upload(client, project["id"], path)
    image = body["image"]
    assert body["created"] is True and body["job_id"] is not None
    with PILImage.open(path) as original:
        assert (image["width"], image["height"]) == original.size  # type: ignore[index]
    assert image["format"] == "jpeg" and image["channels"] == 3  # type: ignore[index]
    image_id = image["id"]  # type: ignore[index]
    assert client.get(f"/api/v1/projects/{project['id']}/images/{image_id}").json() == image
    download = client.get(f"/api/v1/projects/{project['id']}/images/{image_id}/file")
    assert download.status_code == 200 and download.content == path.read_bytes()
    assert download.headers["content-type"] == "image/jpeg"
    job = client.get(f"/api/v1/jobs/{body['job_id']}").json()
    assert job["kind"] == "image_statistics" and job["status"] == "queued"


def test_duplicate_upload_returns_existing(client: TestClient, runtime: Runtime) -> None:
    project = create_project(client)
    path, _ = real_image("ph2", 0)
    first = upload(client, project["id"], path)
    before = state_snapshot(runtime)
    with path.open("rb") as handle:
        again = client.post(
            f"/api/v1/projects/{project['id']}/images", files={"file": ("copy.jpg", handle)}
        )
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["image"]["id"] == first["image"]["id"]  # type: ignore[index]
    assert state_snapshot(runtime) == before


def test_batch_upload_and_pagination(client: TestClient) -> None:
    project = create_project(client)
    paths = [real_image("busi", i)[0] for i in range(3)]
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    response = client.post(f"/api/v1/projects/{project['id']}/images/batch", files=files)
    assert response.status_code == 201, response.text
    assert response.json()["count"] == 3
    page = client.get(
        f"/api/v1/projects/{project['id']}/images", params={"offset": 1, "limit": 1}
    ).json()
    assert page["count"] == 3 and len(page["data"]) == 1
    assert page["data"][0]["original_filename"] == paths[1].name


def test_label_versions_are_appended_never_overwritten(client: TestClient) -> None:
    project = create_project(client)
    path, mask_path = real_image("kvasir_seg", 1)
    image_id = upload(client, project["id"], path)["image"]["id"]  # type: ignore[index]
    base = f"/api/v1/projects/{project['id']}/images/{image_id}/labels"
    assert client.get(f"{base}/current").status_code == 404
    first = client.post(base, files={"file": ("m.png", mask_path.read_bytes())})
    assert first.status_code == 201, first.text
    truth = np.asarray(PILImage.open(mask_path)) > 127
    empty = png_bytes(np.zeros(truth.shape, dtype=np.uint8))
    second = client.post(base, files={"file": ("e.png", empty)}, data={"expected_version": "1"})
    assert second.status_code == 201, second.text
    assert second.json()["parent_id"] == first.json()["id"]
    versions = client.get(base).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert client.get(f"{base}/current").json()["version"] == 2
    stored_first = np.asarray(PILImage.open(io.BytesIO(client.get(f"{base}/1/mask").content)))
    assert np.array_equal(stored_first == 1, truth)
    assert first.json()["foreground_fraction"] == float(truth.mean())


def test_stale_label_version_is_conflict(client: TestClient, runtime: Runtime) -> None:
    project = create_project(client)
    path, mask_path = real_image("kvasir_seg", 2)
    image_id = upload(client, project["id"], path)["image"]["id"]  # type: ignore[index]
    base = f"/api/v1/projects/{project['id']}/images/{image_id}/labels"
    assert client.post(base, files={"file": ("m.png", mask_path.read_bytes())}).status_code == 201
    before = state_snapshot(runtime)
    edited = png_bytes(np.zeros_like(truth_mask(mask_path)))
    stale = client.post(base, files={"file": ("e.png", edited)}, data={"expected_version": "0"})
    assert stale.status_code == 409
    assert state_snapshot(runtime) == before


def test_unknown_ids_are_404(client: TestClient) -> None:
    project = create_project(client)
    other = create_project(client, name="other")
    path, _ = real_image("ph2", 1)
    image_id = upload(client, other["id"], path)["image"]["id"]  # type: ignore[index]
    for url in (
        f"/api/v1/projects/{project['id']}/images/{image_id}",  # another project's image
        f"/api/v1/projects/{project['id']}/images/424242/file",
        f"/api/v1/projects/{other['id']}/images/{image_id}/labels/current",
        f"/api/v1/projects/{other['id']}/images/{image_id}/labels/3/mask",
        "/api/v1/jobs/424242",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["message"]
        # an image without a label says so in its code; a missing image is not_found
        wanted = "no_label" if url.endswith("/labels/current") else "not_found"
        assert response.json()["error"]["code"] == wanted, url
    unknown = client.get(f"/api/v1/projects/{other['id']}/images/424242/labels/current")
    assert unknown.json()["error"]["code"] == "not_found"
