"""What never changes under its URL (an image's file and renders, a label version's mask, a
candidate's mask) carries an ETag; asked again with If-None-Match it is a bodiless 304, and
with another tag the full answer. On SQLite."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.models import Job, JobStatus
from app.runtime import Runtime
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import create_project, real_image, upload
from workers.runner import JobContext, run_job
from workers.tasks.image_statistics import compute_image_statistics

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _urls(client: TestClient, runtime: Runtime) -> list[str]:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image_path, mask_path = real_image("kvasir_seg", 60)
    image_id = int(upload(client, project_id, image_path)["image"]["id"])  # type: ignore[index]
    base = f"/api/v1/projects/{project_id}"
    labels = f"{base}/images/{image_id}/labels"
    assert client.post(labels, files={"file": ("m.png", mask_path.read_bytes())}).is_success
    other_path, other_mask = real_image("kvasir_seg", 61)
    other = int(upload(client, project_id, other_path)["image"]["id"])  # type: ignore[index]
    made = make_round_with_candidates(runtime, project_id, [other], [0.9], [truth_mask(other_mask)])
    return [
        f"{base}/images/{image_id}/file",
        f"{base}/images/{image_id}/display",
        f"{labels}/1/mask",
        f"{base}/candidates/{made.candidate_ids[0]}/mask",
    ]


def test_a_second_request_with_the_etag_is_a_304(client: TestClient, runtime: Runtime) -> None:
    for url in _urls(client, runtime):
        first = client.get(url)
        assert first.status_code == 200 and first.content, url
        tag = first.headers["ETag"]
        assert tag.startswith('"') and first.headers["Cache-Control"] == "private, no-cache"
        again = client.get(url, headers={"If-None-Match": f'W/"other", {tag}'})
        assert again.status_code == 304 and again.content == b"", url
        assert again.headers["ETag"] == tag
        stale = client.get(url, headers={"If-None-Match": '"another version"'})
        assert stale.status_code == 200 and stale.content == first.content, url


def test_a_thumbnail_once_made_has_its_tag(client: TestClient, runtime: Runtime) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    stored = upload(client, project_id, real_image("kvasir_seg", 62)[0])
    image_id, job_id = stored["image"]["id"], stored["job_id"]  # type: ignore[index]

    def make_it(job: Job, context: JobContext) -> str:  # as a worker does
        return compute_image_statistics(runtime, job, context)

    assert run_job(runtime, int(job_id), make_it) is JobStatus.SUCCEEDED  # type: ignore[call-overload]
    url = f"/api/v1/projects/{project_id}/images/{image_id}/thumbnail"
    first = client.get(url)
    assert first.status_code == 200, first.text
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_head_gives_the_headers_of_get_without_the_body(
    client: TestClient, runtime: Runtime
) -> None:
    for url in _urls(client, runtime):
        full = client.get(url)
        head = client.head(url)
        assert head.status_code == 200 and head.content == b"", url
        for name in ("ETag", "Content-Type", "Content-Length"):
            assert head.headers[name] == full.headers[name], (url, name)
        assert int(head.headers["Content-Length"]) == len(full.content)
        cached = client.head(url, headers={"If-None-Match": full.headers["ETag"]})
        assert cached.status_code == 304 and cached.content == b""
    missing = client.head("/api/v1/projects/999999/images/1/file")
    assert missing.status_code == 404 and missing.content == b""
    assert client.head("/api/v1/projects").status_code == 200
    assert client.head("/api/v1/auth/login").status_code == 405  # POST only
    page = client.head("/")
    assert (
        page.status_code == 200
        and page.content == b""
        and "text/html" in page.headers["content-type"]
    )
