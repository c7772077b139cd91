"""Text with a NUL character (JSON's \\u0000, a URL's %00): PostgreSQL refuses it where SQLite
takes it, so both answer a 422 that changes nothing, instead of PostgreSQL's 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.runtime import Runtime
from tests.uploads import create_project, real_image, state_snapshot, upload


def test_a_nul_character_is_a_422_that_changes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    project = create_project(client)
    base = f"/api/v1/projects/{project['id']}"
    image_id = upload(client, project["id"], real_image("kvasir_seg", 90)[0])["image"]["id"]  # type: ignore[index]
    before = state_snapshot(runtime)
    described = client.get(base).json()
    answers = [
        client.post("/api/v1/projects", json={"name": "a\u0000b", "class_names": ["polyp"]}),
        client.patch(base, json={"description": "note\u0000"}),
        client.post(f"{base}/images/{image_id}/archive", json={"reason": "wrong\u0000patient"}),
        client.get(f"{base}/images", params={"filename": "a\u0000"}),
    ]
    for answer in answers:
        assert answer.status_code in (200, 201, 422), answer.text
        if answer.status_code == 422:
            assert "NUL" in answer.json()["error"]["message"], answer.text
    if runtime.settings.resolved_database_url.startswith("postgresql"):
        assert [a.status_code for a in answers] == [422] * 4
        assert state_snapshot(runtime) == before
        assert client.get(base).json() == described


def test_an_archive_reason_of_spaces_is_no_reason(client: TestClient) -> None:
    project = create_project(client)
    image_id = upload(client, project["id"], real_image("kvasir_seg", 91)[0])["image"]["id"]  # type: ignore[index]
    url = f"/api/v1/projects/{project['id']}/images/{image_id}/archive"
    refused = client.post(url, json={"reason": "   "})
    assert refused.status_code == 422 and "only spaces" in refused.json()["error"]["message"]
    kept = client.post(url, json={"reason": "  wrong patient "})
    assert kept.json()["archive_reason"] == "wrong patient"
